//! Task names and ids: a name given at spawn (executor, task, remote-free
//! thread pool) is seen by the task, its handle, `Debug` and the panic
//! message re-raised on join; every piece of work has an id, unique in
//! the process and never reused when the C task is, the same from the
//! handle, the context and the stats.

use monad_async::{Executor, Priority, Switcher, ThreadPool};
use std::collections::HashSet;
use std::panic;
use std::sync::{Arc, Mutex};

#[test]
fn a_named_task_sees_its_name_and_its_handle_shows_it() {
    let ex = Executor::new().unwrap();
    let h = ex
        .build_task()
        .name("conn-42")
        .priority(Priority::High)
        .spawn(|cx| (cx.name().map(str::to_owned), cx.id(), format!("{cx:?}")));
    let id = h.id();
    assert_eq!(h.name(), Some("conn-42"));
    let dbg = format!("{h:?}");
    assert!(
        dbg.contains("conn-42") && dbg.contains(&format!("id: {id}")),
        "{dbg}"
    );
    let (name, cx_id, cx_dbg) = h.join().unwrap();
    assert_eq!(name.as_deref(), Some("conn-42"));
    assert_eq!(cx_id, id);
    assert!(
        cx_dbg.contains("conn-42") && cx_dbg.contains(&format!("id: {id}")),
        "{cx_dbg}"
    );
}

#[test]
fn an_unnamed_task_has_no_name_but_an_id() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| (cx.name().is_none(), cx.id()));
    let id = h.id();
    assert!(id > 0);
    assert_eq!(h.name(), None);
    assert_eq!(h.join().unwrap(), (true, id));
}

#[test]
fn the_panic_message_names_the_task() {
    let ex = Executor::new().unwrap();
    let h = ex
        .build_task()
        .name("conn-42")
        .spawn(|_cx| -> () { panic!("bad request") });
    let id = h.id();
    let err = h.join().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("task 'conn-42' (id {id}) panicked: bad request")
    );
    assert_eq!(err.task_name(), Some("conn-42"));
    assert_eq!(err.task_id(), Some(id));
    let dbg = format!("{err:?}");
    assert!(
        dbg.contains("conn-42") && dbg.contains("bad request"),
        "{dbg}"
    );
    // Re-raised, the payload is still the original one.
    let payload = err.into_panic();
    let caught = panic::catch_unwind(panic::AssertUnwindSafe(|| panic::resume_unwind(payload)));
    let p = caught.unwrap_err();
    assert_eq!(p.downcast_ref::<&str>(), Some(&"bad request"));
}

#[test]
fn ids_are_unique_and_not_reused_with_the_task() {
    // 2,000 pieces of work on a handful of reused tasks: 2,000 ids.
    let ex = Executor::new().unwrap();
    let mut ids = HashSet::new();
    for round in 0..20 {
        let handles: Vec<_> = (0..100)
            .map(|i| {
                ex.spawn(Priority::ALL[i % 3], move |cx| {
                    cx.yield_now().unwrap();
                    cx.id()
                })
            })
            .collect();
        for h in handles {
            let id = h.id();
            assert_eq!(h.join().unwrap(), id);
            assert!(ids.insert(id), "id {id} reused in round {round}");
        }
    }
    assert_eq!(ids.len(), 2000);
    assert!(ex.stats().tasks_created <= 100);
}

#[test]
fn ids_are_unique_across_threads_and_executors() {
    let ids = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|s| {
        for _ in 0..4 {
            let ids = Arc::clone(&ids);
            s.spawn(move || {
                let ex = Executor::new().unwrap();
                let hs: Vec<_> = (0..500)
                    .map(|_| ex.spawn(Priority::Normal, |cx| cx.id()))
                    .collect();
                let mine: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
                ids.lock().unwrap().extend(mine);
            });
        }
    });
    let ids = ids.lock().unwrap();
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 2000);
}

#[test]
fn stats_carry_the_id_and_the_name() {
    let ex = Executor::new().unwrap();
    let h = ex.build_task().name("s").spawn(|cx| {
        let s = cx.stats();
        (s.id, s.name)
    });
    let unnamed = ex.spawn(Priority::Normal, |cx| cx.stats().name);
    ex.run_until_idle().unwrap();
    let id = h.id();
    let stats = h.stats().unwrap();
    assert_eq!(stats.id, id);
    assert_eq!(stats.name.as_deref(), Some("s"));
    assert_eq!(h.join().unwrap(), (id, Some("s".into())));
    assert_eq!(unnamed.stats().unwrap().name, None);
    assert_eq!(unnamed.join().unwrap(), None);
}

#[test]
fn a_child_spawned_from_a_task_is_named() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| {
        let name = format!("child-of-{}", cx.id());
        let child = cx
            .build_task()
            .name(name)
            .spawn(|cx| cx.name().unwrap().to_owned());
        (cx.id(), child.join().unwrap())
    });
    let (parent, child_name) = h.join().unwrap();
    assert_eq!(child_name, format!("child-of-{parent}"));
}

#[test]
fn a_reused_task_drops_the_last_work_name() {
    // One task, reused: named, then unnamed work on it.
    let ex = Executor::new().unwrap();
    let named = ex
        .build_task()
        .name("first")
        .spawn(|cx| cx.name().map(str::to_owned));
    assert_eq!(named.join().unwrap().as_deref(), Some("first"));
    let unnamed = ex.spawn(Priority::Normal, |cx| cx.name().map(str::to_owned));
    assert_eq!(unnamed.name(), None);
    assert_eq!(unnamed.join().unwrap(), None);
    assert_eq!(ex.stats().tasks_created, 1);
}

#[test]
fn pool_tasks_are_named_and_their_panics_say_so() {
    for sw in [Switcher::None, Switcher::Asm] {
        let pool = ThreadPool::builder()
            .threads(2)
            .switcher(sw)
            .build()
            .unwrap();
        let handles: Vec<_> = (0..200)
            .map(|i| {
                pool.build_task()
                    .name(format!("job-{i}"))
                    .priority(Priority::ALL[i % 3])
                    .spawn(move |cx| {
                        if i % 10 == 0 {
                            panic!("job {i} failed");
                        }
                        (cx.name().unwrap().to_owned(), cx.id())
                    })
            })
            .collect();
        let mut ids = HashSet::new();
        for (i, h) in handles.into_iter().enumerate() {
            let id = h.id();
            assert!(ids.insert(id));
            assert_eq!(h.name(), Some(format!("job-{i}").as_str()));
            match h.join() {
                Ok((name, cx_id)) => assert_eq!((name, cx_id), (format!("job-{i}"), id)),
                Err(e) => {
                    assert_eq!(i % 10, 0);
                    assert_eq!(
                        e.to_string(),
                        format!("task 'job-{i}' (id {id}) panicked: job {i} failed")
                    );
                }
            }
        }
    }
}

#[test]
fn a_name_from_a_pool_task_spawning_on_an_executor_is_refused_cleanly() {
    // cx.build_task() inside a pool closure has no executor to go to.
    let pool = ThreadPool::builder().threads(1).build().unwrap();
    let h = pool.spawn(Priority::Normal, |cx| {
        cx.build_task()
            .name("x")
            .try_spawn(|_cx| ())
            .unwrap_err()
            .raw_os_error()
    });
    assert_eq!(h.join().unwrap(), Some(libc::ENOTSUP));
}

#[test]
fn a_task_spawned_through_a_handle_from_another_thread_is_named() {
    let ex = Executor::new().unwrap();
    let handle = ex.handle();
    let t = std::thread::spawn(move || {
        let h = handle
            .build_task()
            .name("remote-7")
            .spawn(|cx| -> () {
                cx.yield_now().unwrap();
                panic!("remote trouble")
            })
            .unwrap();
        let (id, name) = (h.id(), h.name().map(str::to_owned));
        (id, name, h.join())
    });
    while !t.is_finished() {
        let _ = ex.run(usize::MAX, Some(std::time::Duration::from_millis(5)));
    }
    let (id, name, joined) = t.join().unwrap();
    assert_eq!(name.as_deref(), Some("remote-7"));
    assert_eq!(
        joined.unwrap_err().to_string(),
        format!("task 'remote-7' (id {id}) panicked: remote trouble")
    );
}
