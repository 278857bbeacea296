//! The hyper 1.x peer of `examples/http_server.rs` for `benches/http/run.sh`:
//! HTTP/1.1 only, one current-thread tokio runtime (one core, as the
//! monad-async server has one executor), `pipeline_flush` on (the
//! TechEmpower setting: the replies of a pipelined batch leave in one
//! write). `GET /plaintext` -> `Hello, World!` with the same headers as
//! the other two servers (Server, Date, Content-Type, Content-Length;
//! hyper adds Date and Content-Length itself); 404 otherwise.
//!
//! `http_hyper --addr 127.0.0.1:8081`

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;

const BODY: &[u8] = b"Hello, World!";

async fn plaintext(
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = if req.uri().path() == "/plaintext" {
        (StatusCode::OK, Bytes::from_static(BODY))
    } else {
        (StatusCode::NOT_FOUND, Bytes::from_static(b"Not Found"))
    };
    let mut rsp = Response::new(Full::new(body));
    *rsp.status_mut() = status;
    let h = rsp.headers_mut();
    h.insert(SERVER, HeaderValue::from_static("M"));
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(rsp)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let addr: SocketAddr = args
        .iter()
        .position(|a| a == "--addr")
        .and_then(|i| args.get(i + 1))
        .map_or("127.0.0.1:8081", String::as_str)
        .parse()
        .expect("--addr HOST:PORT");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!(
            "hyper server on http://{}/plaintext",
            listener.local_addr()?
        );
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .pipeline_flush(true)
                    .serve_connection(TokioIo::new(stream), service_fn(plaintext))
                    .await;
            });
        }
    })
}
