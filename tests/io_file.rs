//! Files through the ring from the safe API: write then read back at
//! offsets, sync, close, errors as `io::Error`, conversions to and from
//! std's `File` and `OwnedFd`, many tasks doing file I/O at once.

use monad_async::io::File;
use monad_async::{Executor, Priority};
use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

fn temp_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("monad-async-{tag}-{}", std::process::id()))
}

#[test]
fn write_read_back_sync_close() -> io::Result<()> {
    let ex = Executor::new()?;
    let path = temp_path("rw");
    let p = path.clone();
    let h = ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
        let f = File::create(cx, &p)?;
        let data: Vec<u8> = (0..65536u32).map(|i| (i * 7 + i / 256) as u8).collect();
        f.write_all_at(cx, &data, 4096)?;
        f.sync_all(cx)?;
        f.sync_data(cx)?;
        let mut back = vec![0u8; data.len()];
        f.read_exact_at(cx, &mut back, 4096)?;
        assert_eq!(back, data);
        // The hole before the data reads as zeroes; past the end, 0 bytes.
        let mut hole = [1u8; 4096];
        f.read_exact_at(cx, &mut hole, 0)?;
        assert!(hole.iter().all(|&b| b == 0));
        assert_eq!(f.read_at(cx, &mut hole, 1 << 20)?, 0);
        f.close(cx)
    });
    h.join().unwrap()?;
    assert_eq!(std::fs::metadata(&path)?.len(), 4096 + 65536);
    std::fs::remove_file(&path)
}

#[test]
fn errors_are_io_errors() -> io::Result<()> {
    let ex = Executor::new()?;
    let h = ex.spawn(Priority::Normal, |cx| {
        File::open(cx, "/no/such/dir/file").map(drop)
    });
    let err = h.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    // Without a ring: ENOTSUP.
    let ex = Executor::builder().ring_entries(0).build()?;
    let h = ex.spawn(Priority::Normal, |cx| File::open(cx, "/").map(drop));
    assert_eq!(
        h.join().unwrap().unwrap_err().raw_os_error(),
        Some(libc::ENOTSUP)
    );
    Ok(())
}

#[test]
fn conversions_with_std() -> io::Result<()> {
    let path = temp_path("conv");
    std::fs::write(&path, b"from std")?;
    let std_file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)?;
    let ours = File::from(std_file);
    let ex = Executor::new()?;
    let h = ex.spawn(Priority::Normal, move |cx| -> io::Result<OwnedFd> {
        let mut buf = [0u8; 8];
        ours.read_exact_at(cx, &mut buf, 0)?;
        assert_eq!(&buf, b"from std");
        ours.write_all_at(cx, b"FROM", 0)?;
        Ok(OwnedFd::from(ours))
    });
    let fd = h.join().unwrap()?;
    let back = std::fs::File::from(File::from(fd));
    drop(back);
    assert_eq!(std::fs::read(&path)?, b"FROM std");
    std::fs::remove_file(&path)
}

#[test]
fn many_tasks_share_one_file() -> io::Result<()> {
    let ex = Executor::builder().ring_entries(8).build()?;
    let path = temp_path("many");
    std::fs::write(&path, vec![0u8; 64 * 512])?;
    let handles: Vec<_> = (0..64u8)
        .map(|i| {
            let p = path.clone();
            ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
                let f = File::open(cx, &p)?;
                let block = [i; 512];
                f.write_all_at(cx, &block, u64::from(i) * 512)?;
                let mut back = [0u8; 512];
                f.read_exact_at(cx, &mut back, u64::from(i) * 512)?;
                assert_eq!(back, block);
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap()?;
    }
    let all = std::fs::read(&path)?;
    for (i, chunk) in all.chunks(512).enumerate() {
        assert!(chunk.iter().all(|&b| b as usize == i));
    }
    std::fs::remove_file(&path)
}
