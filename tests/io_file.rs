//! Files through the ring from the safe API: write then read back at
//! offsets, sync, close, errors as `io::Error`, conversions to and from
//! std's `File` and `OwnedFd`, many tasks doing file I/O at once, batches
//! of reads and of writes, vectored reads and writes, fallocate (reserve,
//! keep size, punch hole) and sync_file_range.

use monad_async::io::File;
use monad_async::{Executor, Priority};
use std::io::{self, IoSlice, IoSliceMut};
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

#[test]
fn read_many_at_batch() -> io::Result<()> {
    let ex = Executor::new()?;
    let path = temp_path("batch");
    let p = path.clone();
    let h = ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
        let f = File::create(cx, &p)?;
        let data: Vec<u8> = (0..64 * 4096u32)
            .map(|i| (i * 31 + i / 4096) as u8)
            .collect();
        f.write_all_at(cx, &data, 0)?;
        let mut bufs = vec![vec![0u8; 4096]; 64];
        // Reverse order of offsets, one past the end, one bad offset.
        let mut reads: Vec<(u64, &mut [u8])> = bufs
            .iter_mut()
            .enumerate()
            .map(|(i, b)| (((63 - i) * 4096) as u64, &mut b[..]))
            .collect();
        let mut tail = [7u8; 16];
        let mut bad = [7u8; 16];
        reads.push((1 << 30, &mut tail[..]));
        reads.push((u64::MAX, &mut bad[..]));
        let out = f.read_many_at(cx, &mut reads);
        assert_eq!(out.len(), 66);
        for r in &out[..64] {
            assert_eq!(*r.as_ref().unwrap(), 4096);
        }
        assert_eq!(*out[64].as_ref().unwrap(), 0);
        assert_eq!(
            out[65].as_ref().unwrap_err().raw_os_error(),
            Some(libc::EINVAL)
        );
        drop(reads);
        for (i, b) in bufs.iter().enumerate() {
            let off = (63 - i) * 4096;
            assert_eq!(&b[..], &data[off..off + 4096], "read {i}");
        }
        assert!(f.read_many_at(cx, &mut []).is_empty());
        f.close(cx)
    });
    h.join().unwrap()?;
    std::fs::remove_file(&path)
}

/// A task cancelled while its batch waits on a pipe: the read that had
/// data completes, the others end with ECANCELED, and none is left in
/// flight (data written afterwards is still there to read).
#[test]
fn read_many_at_cancelled_mid_batch() -> io::Result<()> {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    let mut fds = [0; 2];
    // SAFETY: a valid two-int array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the descriptors pipe2 just returned, each owned once.
    let (rd, wr) = unsafe {
        use std::os::fd::FromRawFd;
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    let mut wr = std::fs::File::from(wr);
    wr.write_all(&[5u8; 16])?;
    let rd_std = std::fs::File::from(rd.try_clone()?);

    let ex = Executor::new()?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let h = ex.spawn(Priority::Normal, move |cx| {
        let f = File::from(rd);
        let mut bufs = [[0u8; 16]; 4];
        let mut reads: Vec<(u64, &mut [u8])> = bufs.iter_mut().map(|b| (0, &mut b[..])).collect();
        let out = f.read_many_at(cx, &mut reads);
        *s.lock().unwrap() = out
            .iter()
            .map(|r| r.as_ref().map(|&n| n).map_err(|e| e.raw_os_error()))
            .collect::<Vec<_>>();
    });
    ex.run(16, Some(Duration::from_millis(50)))?;
    assert!(!h.is_finished());
    assert!(ex.cancel(&h)?);
    assert!(h.join().unwrap_err().is_cancelled());
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen.iter().filter(|r| **r == Ok(16)).count(), 1, "{seen:?}");
    assert_eq!(
        seen.iter()
            .filter(|r| **r == Err(Some(libc::ECANCELED)))
            .count(),
        3,
        "{seen:?}"
    );
    // No read is still queued in the kernel to steal these bytes.
    wr.write_all(b"still here")?;
    let mut back = [0u8; 10];
    (&rd_std).read_exact(&mut back)?;
    assert_eq!(&back, b"still here");
    Ok(())
}

#[test]
fn vectored_writes_and_reads_round_trip() -> io::Result<()> {
    let ex = Executor::new()?;
    let path = temp_path("vectored");
    let p = path.clone();
    let h = ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
        let f = File::create(cx, &p)?;
        // 64 pieces of different lengths and contents, written in one call.
        let pieces: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 1 + usize::from(i) * 3]).collect();
        let slices: Vec<IoSlice<'_>> = pieces.iter().map(|v| IoSlice::new(v)).collect();
        let total: usize = pieces.iter().map(Vec::len).sum();
        assert_eq!(f.write_vectored_at(cx, &slices, 100)?, total);
        // Read back into differently cut buffers.
        let mut a = vec![0u8; 1000];
        let mut b = vec![0u8; total - 1000];
        let mut bufs = [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)];
        assert_eq!(f.read_vectored_at(cx, &mut bufs, 100)?, total);
        let mut back = a;
        back.extend_from_slice(&b);
        assert_eq!(back, pieces.concat());
        // No buffers: nothing done.
        assert_eq!(f.write_vectored_at(cx, &[], 0)?, 0);
        // An offset beyond i64::MAX is refused before reaching the kernel.
        let err = f.read_vectored_at(cx, &mut [], u64::MAX).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        f.close(cx)
    });
    h.join().unwrap()?;
    std::fs::remove_file(path)
}

#[test]
fn allocate_keep_size_punch_hole_and_sync_range() -> io::Result<()> {
    let ex = Executor::new()?;
    let path = temp_path("falloc");
    let p = path.clone();
    let h = ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
        let f = File::create(cx, &p)?;
        f.allocate(cx, 0, 64 * 1024)?;
        assert_eq!(std::fs::metadata(&p)?.len(), 64 * 1024);
        // KEEP_SIZE reserves past the end without growing the file.
        f.fallocate(cx, libc::FALLOC_FL_KEEP_SIZE, 64 * 1024, 64 * 1024)?;
        assert_eq!(std::fs::metadata(&p)?.len(), 64 * 1024);
        f.write_all_at(cx, &[0xab; 64 * 1024], 0)?;
        f.sync_range(
            cx,
            0,
            0,
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER,
        )?;
        // Punch a hole where the file system supports it: those bytes
        // then read as zeros, the rest keeps its data.
        match f.fallocate(
            cx,
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            4096,
            8192,
        ) {
            Ok(()) => {
                let mut back = vec![0u8; 16 * 1024];
                f.read_exact_at(cx, &mut back, 0)?;
                assert!(back[..4096].iter().all(|&x| x == 0xab));
                assert!(back[4096..12288].iter().all(|&x| x == 0));
                assert!(back[12288..].iter().all(|&x| x == 0xab));
            }
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EOPNOTSUPP)),
        }
        // The kernel's errors come back as they are.
        let err = f.sync_range(cx, 0, 0, 0x80).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        let err = f.fallocate(cx, 0, 0, 0).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        let err = f.allocate(cx, u64::MAX, 1).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        f.close(cx)
    });
    h.join().unwrap()?;
    std::fs::remove_file(path)
}

#[test]
fn write_many_at_batch_then_read_back() -> io::Result<()> {
    let ex = Executor::new()?;
    let path = temp_path("wmany");
    let p = path.clone();
    let h = ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
        let f = File::create(cx, &p)?;
        // 64 blocks written in one batch, in a scrambled order, plus one
        // entry with an offset C cannot take.
        let blocks: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i ^ 0x5a; 512]).collect();
        let mut writes: Vec<(u64, &[u8])> = (0..64usize)
            .map(|k| {
                let i = (k * 37) % 64;
                (i as u64 * 512, &blocks[i][..])
            })
            .collect();
        writes.insert(10, (u64::MAX, &b"never"[..]));
        let out = f.write_many_at(cx, &writes);
        assert_eq!(out.len(), 65);
        for (k, r) in out.iter().enumerate() {
            if k == 10 {
                assert_eq!(r.as_ref().unwrap_err().raw_os_error(), Some(libc::EINVAL));
            } else {
                assert_eq!(*r.as_ref().unwrap(), 512, "entry {k}");
            }
        }
        let mut back = vec![vec![0u8; 512]; 64];
        let mut reads: Vec<(u64, &mut [u8])> = back
            .iter_mut()
            .enumerate()
            .map(|(i, b)| (i as u64 * 512, &mut b[..]))
            .collect();
        assert!(f
            .read_many_at(cx, &mut reads)
            .iter()
            .all(|r| matches!(r, Ok(512))));
        assert_eq!(back, blocks);
        f.close(cx)
    });
    h.join().unwrap()?;
    assert_eq!(std::fs::metadata(&path)?.len(), 64 * 512);
    std::fs::remove_file(path)
}
