//! The may_minihttp peer of `examples/http_server.rs` for
//! `benches/http/run.sh`: may's stackful coroutines on one worker thread
//! (one core, as the monad-async server has one executor). `GET
//! /plaintext` -> `Hello, World!` with the same headers as the other two
//! servers (may_minihttp writes Server, Date and Content-Length itself;
//! Content-Type is added here); 404 otherwise.
//!
//! `http_may --addr 127.0.0.1:8082`

use may_minihttp::{HttpService, HttpServiceFactory, Request, Response};
use std::io;

#[derive(Clone)]
struct Plaintext;

impl HttpService for Plaintext {
    fn call(&mut self, req: Request, rsp: &mut Response) -> io::Result<()> {
        rsp.header("Content-Type: text/plain");
        if req.path() == "/plaintext" {
            rsp.body("Hello, World!");
        } else {
            rsp.status_code(404, "Not Found");
            rsp.body("Not Found");
        }
        Ok(())
    }
}

struct Factory;

impl HttpServiceFactory for Factory {
    type Service = Plaintext;
    fn new_service(&self, _id: usize) -> Plaintext {
        Plaintext
    }
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let addr = args
        .iter()
        .position(|a| a == "--addr")
        .and_then(|i| args.get(i + 1))
        .map_or("127.0.0.1:8082", String::as_str)
        .to_string();
    // One worker: the coroutines of every connection on one thread. Not
    // pinned by may itself: run.sh pins the whole process with taskset.
    may::config().set_workers(1).set_worker_pin(false);
    let server = Factory.start(&addr)?;
    println!("may_minihttp server on http://{addr}/plaintext");
    server
        .join()
        .map_err(|_| io::Error::other("the server coroutine panicked"))
}
