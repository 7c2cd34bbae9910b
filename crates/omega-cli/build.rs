//! Pins the interpreter's dispatch loop (`omega_lisp::vm::VmCore::run_slice`, and the
//! out-of-line loop edges of `vm::edge` after it) to a fixed place in the `omega` binary on
//! Linux: a section of its own, page-aligned, starting `OMEGA_VM_PHASE` bytes into the page
//! (default [`DEFAULT_PHASE`]).
//!
//! Why: where the linker happened to put `run_slice` changed `fib` and `tak` by 7–10 % from one
//! build to the next with the same code (its offset within a 64-byte line decides how its hot
//! branches fall into the CPU's fetch and prediction windows), so unrelated changes moved the
//! speed table and no change could be judged by its time. Pinned, a build's speed depends on
//! its own code only, and the phase is a setting to measure rather than a lottery: on an Intel
//! Xeon (stop 30, `benches/README.md`) one 16-byte step of it moves `fib` by up to 12 % and
//! `tak` by up to 11 %, and which step is best moves when `run_slice` itself changes (16 for
//! stop 30's first version, 0 for its last, 16 again for stop 31's, whose only change near it was
//! outside the loop yet moved LLVM's block order inside it). After a change to `run_slice`, build with
//! `OMEGA_VM_PHASE=0`, `16`, `32` and `48`, time `benches/programs/run.sh` (or the paired
//! CPU times of its programs) and keep the best as the default here. Another CPU may prefer
//! another phase.
//!
//! How: a linker script that only inserts one output section before `.text` (the default
//! layout stays; `INSERT` scripts are understood by LLD, Rust's default linker on this target,
//! and by GNU ld). Its input patterns match the functions' sections (`-ffunction-sections` is
//! rustc's default) under either symbol mangling; if they ever match nothing, the section is
//! empty and the binary is laid out as before (`tests/layout.rs` fails then).
//!
//! It also links `omega` as a position-dependent executable (`-no-pie`; set `OMEGA_PIE=1` at
//! build time to keep the default PIE). The code is still compiled position-independent; only
//! the final link changes, so the linker fixes every address inside the binary instead of
//! leaving ~25,600 relative relocations (600 KB of `.rela.dyn`) for the loader to apply at
//! every start, each write dirtying a page of `.data.rel.ro`. `omega run` on a one-line script:
//! 486 → 345 page faults and about 0.2 ms less CPU time, of ~1.8 ms (benches/README, "Stop 31").
//! The price is that the executable's own image loads at a fixed address (its libraries, heap,
//! stack and mappings are still randomised): defence in depth that a binary with no `unsafe`
//! code of its own (the workspace denies it) gives up knowingly, as distributions do for
//! interpreters whose start-up matters (Debian's `python3` is built without PIE).
use std::env;
use std::fmt::Write as _;
use std::path::PathBuf;

/// The phase measured best for the current `run_slice` (stop 31, Intel Xeon: CPU time of the
/// seven programs with a Lua port, geometric mean against Lua, two alternated rounds: phase 0
/// 1.003 and 0.996, 16 0.991 and 0.992, 32 1.001 and 0.998, 48 1.049).
const DEFAULT_PHASE: u32 = 16;

fn main() {
    println!("cargo:rerun-if-env-changed=OMEGA_VM_PHASE");
    println!("cargo:rerun-if-env-changed=OMEGA_PIE");
    println!("cargo:rerun-if-changed=build.rs");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    // A static build (`-C target-feature=+crt-static`) is left as rustc links it: `-no-pie`
    // on top of its `-static-pie` would make a binary that crashes at once.
    let crt_static =
        env::var("CARGO_CFG_TARGET_FEATURE").is_ok_and(|f| f.split(',').any(|f| f == "crt-static"));
    if env::var("OMEGA_PIE").as_deref() != Ok("1") && !crt_static {
        println!("cargo:rustc-link-arg-bin=omega=-no-pie");
    }
    let phase = match env::var("OMEGA_VM_PHASE") {
        Ok(v) => match parse_phase(&v) {
            Some(p) => p,
            None => {
                println!(
                    "cargo:warning=OMEGA_VM_PHASE={v} is not a multiple of 16 below 4096; using {DEFAULT_PHASE}"
                );
                DEFAULT_PHASE
            }
        },
        Err(_) => DEFAULT_PHASE,
    };
    let mut script = String::new();
    // The section names are `.text.` and the mangled symbol: legacy (`_ZN10omega_lisp2vm6VmCore
    // 9run_slice17h…E`) or v0 (`_RNv…10omega_lisp2vm…6VmCore9run_slice`).
    // Only the function itself comes first (not its closures or their `drop_in_place`s, whose
    // names also hold `run_slice`): legacy names end in `17h` and a hash, v0 names of a
    // function start with `_RNv` (closures with `_RNC`).
    let _ = write!(
        script,
        "SECTIONS {{\n  .text.omega_vm : ALIGN(4096) {{\n    . = . + {phase};\n    \
         *(.text._ZN10omega_lisp2vm6VmCore9run_slice17h*)\n    \
         *(.text._RNv*10omega_lisp2vm*6VmCore9run_slice .text._RNv*10omega_lisp2vm*6VmCore9run_slice.*)\n    \
         *(.text._ZN10omega_lisp2vm4edge*)\n  }}\n}} INSERT BEFORE .text;\n"
    );
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("vm_layout.ld");
    if let Err(e) = std::fs::write(&out, script) {
        // Without the script the binary is only laid out by chance, as before.
        println!("cargo:warning=cannot write {}: {e}", out.display());
        return;
    }
    println!("cargo:rustc-link-arg-bin=omega=-Wl,-T,{}", out.display());
}

/// `OMEGA_VM_PHASE` as a byte offset: decimal or `0x` hexadecimal, a multiple of 16 (the
/// functions' own alignment) below 4096.
fn parse_phase(v: &str) -> Option<u32> {
    let v = v.trim();
    let n = match v.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => v.parse().ok()?,
    };
    (n < 4096 && n % 16 == 0).then_some(n)
}
