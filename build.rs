//! Builds the C core (`csrc/`) into a static library and links liburing.
//!
//! * Every `csrc/src/*.c` is compiled with `-std=gnu11`, the include
//!   directories `csrc/include` and `csrc/src`, and liburing's pkg-config
//!   cflags. `context_sjlj.c` is compiled without `_FORTIFY_SOURCE` (glibc's
//!   fortified `longjmp` refuses to jump between stacks).
//! * The architecture's context-switch assembly (`csrc/src/switch_<arch>.S`)
//!   is assembled alongside.
//! * liburing is found with pkg-config; when it is missing the build stops
//!   with one message saying what to install.
//! * With the `bindgen` feature the raw bindings are regenerated into
//!   `OUT_DIR` and compared with the committed `src/sys/bindings.rs` (the
//!   build fails if they differ); `MONAD_ASYNC_UPDATE_BINDINGS=1` writes the
//!   fresh bindings into `src/sys/bindings.rs` instead.
//! * With `DOCS_RS` set (docs.rs, or `DOCS_RS=1 cargo doc`) nothing is
//!   compiled or linked and liburing is not looked for: docs.rs has no
//!   liburing, and documentation needs only the committed bindings, never
//!   the C library. Such a build cannot link a program.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let csrc = manifest_dir.join("csrc");

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=csrc/include");
    println!("cargo:rerun-if-changed=csrc/src");
    println!("cargo:rerun-if-changed=src/sys/bindings.rs");
    println!("cargo:rerun-if-env-changed=MONAD_ASYNC_UPDATE_BINDINGS");
    println!("cargo:rerun-if-env-changed=DOCS_RS");

    if env::var_os("DOCS_RS").is_some() {
        // Documentation only: src/sys/bindings.rs is committed, so rustdoc
        // needs no header, no compiler and no liburing.
        return;
    }

    let uring = probe_liburing();

    #[cfg(feature = "bindgen")]
    regenerate::check_bindings(&manifest_dir);

    compile_c(&csrc, &uring);

    // Link liburing after our static library (order matters for static
    // and --as-needed links).
    for dir in &uring.link_paths {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
    for lib in &uring.libs {
        println!("cargo:rustc-link-lib={lib}");
    }
}

/// Stops the build with one message that `cargo` shows as an error.
fn fail(message: &str) -> ! {
    println!("cargo::error={message}");
    std::process::exit(1);
}

fn probe_liburing() -> pkg_config::Library {
    match pkg_config::Config::new()
        .cargo_metadata(false)
        .probe("liburing")
    {
        Ok(lib) => lib,
        Err(err) => {
            let text = err.to_string();
            let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            let reason = text
                .lines()
                .map(str::trim)
                .find(|l| l.contains("not find") || l.contains("Could not run"))
                .or_else(|| lines.next())
                .unwrap_or("no details");
            fail(&format!(
                "monad-async needs liburing and pkg-config, and pkg-config could not find liburing \
                 ({reason}). Install them: Debian/Ubuntu `apt-get install liburing-dev pkg-config`, \
                 Fedora `dnf install liburing-devel pkgconf-pkg-config`, Arch `pacman -S liburing pkgconf`; \
                 if liburing is installed under another prefix, point PKG_CONFIG_PATH at the directory \
                 holding liburing.pc."
            ))
        }
    }
}

fn compile_c(csrc: &Path, uring: &pkg_config::Library) {
    let src_dir = csrc.join("src");
    let mut c_files: Vec<PathBuf> = match fs::read_dir(&src_dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "c"))
            .collect(),
        Err(err) => fail(&format!(
            "cannot read the C sources in {}: {err}",
            src_dir.display()
        )),
    };
    if c_files.is_empty() {
        fail(&format!(
            "no C sources in {} (the C core is missing from this checkout)",
            src_dir.display()
        ));
    }
    c_files.sort();

    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let asm = match arch.as_str() {
        "x86_64" => Some(src_dir.join("switch_x86_64.S")),
        "aarch64" => Some(src_dir.join("switch_aarch64.S")),
        _ => None,
    };

    let mut base = cc::Build::new();
    base.flag("-std=gnu11")
        .flag("-pthread")
        .include(csrc.join("include"))
        .include(&src_dir)
        .warnings(true);
    for dir in &uring.include_paths {
        base.include(dir);
    }
    for (name, value) in &uring.defines {
        base.define(name, value.as_deref());
    }
    if env::var_os("CARGO_FEATURE_TRACING").is_some() {
        // The run loop's trace hooks (csrc/include/monad_async/trace.h).
        base.define("MONAD_ASYNC_TRACE_HOOKS", "1");
    }

    let (sjlj, rest): (Vec<PathBuf>, Vec<PathBuf>) = c_files
        .into_iter()
        .partition(|p| p.file_name().is_some_and(|n| n == "context_sjlj.c"));

    let mut main = base.clone();
    if !sjlj.is_empty() {
        // glibc's fortified longjmp refuses to jump between stacks.
        let objects = base
            .clone()
            .files(&sjlj)
            .flag("-U_FORTIFY_SOURCE")
            .flag("-D_FORTIFY_SOURCE=0")
            .compile_intermediates();
        main.objects(objects);
    }
    main.files(&rest);
    if let Some(asm) = asm {
        if asm.exists() {
            main.file(asm);
        }
    }
    main.compile("monad_async");
}

#[cfg(feature = "bindgen")]
mod regenerate {
    use std::env;
    use std::fs;
    use std::path::{Path, PathBuf};

    /// The header comment of the committed bindings file. Part of the
    /// comparison, so it must stay byte-identical.
    const HEADER: &str = "\
// Raw FFI bindings to monad-async's public C headers (csrc/include/monad_async.h).
//
// GENERATED by bindgen from build.rs: never edit this file by hand.
// Regenerate it after changing a public header with
//     MONAD_ASYNC_UPDATE_BINDINGS=1 cargo build --features bindgen
// (`cargo build --features bindgen` alone fails while this file is stale).
// Formatted by prettyplease, so the output does not depend on rustfmt.

";

    pub fn check_bindings(manifest_dir: &Path) {
        let include = manifest_dir.join("csrc").join("include");
        let header = include.join("monad_async.h");
        let bindings = bindgen::Builder::default()
            .header(header.to_string_lossy())
            .clang_arg(format!("-I{}", include.display()))
            // The headers document with plain /* */ comments: keep them.
            .clang_arg("-fparse-all-comments")
            .allowlist_function("monad_async_.*")
            .allowlist_type("monad_async_.*")
            .allowlist_var("MONAD_ASYNC_.*")
            // struct timespec comes from libc, not from us.
            .blocklist_type("timespec")
            .blocklist_type("__time_t")
            .blocklist_type("__syscall_slong_t")
            .raw_line("pub use libc::timespec;")
            // Any integer the C side stores is a valid value of these.
            .default_enum_style(bindgen::EnumVariation::NewType {
                is_bitfield: false,
                is_global: false,
            })
            .bitfield_enum("monad_async_.*_flag")
            .must_use_type("monad_async_result")
            .derive_default(true)
            .merge_extern_blocks(true)
            .disable_header_comment()
            .formatter(bindgen::Formatter::Prettyplease)
            .generate()
            .unwrap_or_else(|err| {
                super::fail(&format!("bindgen failed on {}: {err}", header.display()))
            });

        let fresh = normalise(&format!("{HEADER}{bindings}"));
        let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR")).join("bindings.rs");
        fs::write(&out, &fresh)
            .unwrap_or_else(|e| super::fail(&format!("cannot write {}: {e}", out.display())));

        let committed_path = manifest_dir.join("src").join("sys").join("bindings.rs");
        if env::var_os("MONAD_ASYNC_UPDATE_BINDINGS").is_some_and(|v| v == "1") {
            fs::write(&committed_path, &fresh).unwrap_or_else(|e| {
                super::fail(&format!("cannot write {}: {e}", committed_path.display()))
            });
            println!(
                "cargo:warning=monad-async: wrote fresh bindings to {}",
                committed_path.display()
            );
            return;
        }
        let committed = fs::read_to_string(&committed_path)
            .map(|s| normalise(&s))
            .unwrap_or_default();
        if committed != fresh {
            let line = committed
                .lines()
                .zip(fresh.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| committed.lines().count().min(fresh.lines().count()))
                + 1;
            super::fail(&format!(
                "src/sys/bindings.rs is out of date with csrc/include (first difference at line {line}; \
                 fresh bindings are in {}). Run `MONAD_ASYNC_UPDATE_BINDINGS=1 cargo build --features bindgen` \
                 and commit src/sys/bindings.rs.",
                out.display()
            ));
        }
    }

    /// Line endings and trailing whitespace never count as a difference.
    fn normalise(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for line in text.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}
