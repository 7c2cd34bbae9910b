//! The `omega` binary's layout (`build.rs`): the dispatch loop, `VmCore::run_slice`, sits
//! `OMEGA_VM_PHASE` bytes (default 16, as in build.rs) into a page of its own section, whatever else changed
//! in the build. If a toolchain update ever renames the function's section so the linker
//! script no longer matches it, this fails instead of the speed table quietly going back to
//! the layout lottery. It is also linked without PIE (`build.rs`; `OMEGA_PIE=1` keeps PIE).
#![cfg(target_os = "linux")]

use object::{Object, ObjectSection, ObjectSymbol};

#[test]
fn the_dispatch_loop_is_pinned_at_its_phase_of_a_page() {
    let path = env!("CARGO_BIN_EXE_omega");
    let data = std::fs::read(path).expect("the omega binary can be read");
    let file = object::File::parse(&*data).expect("the omega binary is an object file");
    let section = file
        .section_by_name(".text.omega_vm")
        .expect("build.rs's linker script made the .text.omega_vm section");
    assert_eq!(section.address() % 4096, 0, "the section starts a page");
    let found: Vec<(String, u64)> = file
        .symbols()
        .filter_map(|s| Some((s.name().ok()?.to_string(), s.address())))
        .filter(|(name, _)| is_dispatch_loop(name))
        .collect();
    assert_eq!(found.len(), 1, "one dispatch loop: {found:?}");
    let (name, addr) = &found[0];
    // As build.rs reads it: decimal or 0x hexadecimal, a multiple of 16 below 4096, else its
    // default.
    let phase = option_env!("OMEGA_VM_PHASE")
        .and_then(|v| {
            let v = v.trim();
            match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => v.parse().ok(),
            }
        })
        .filter(|n| *n < 4096 && n % 16 == 0)
        .unwrap_or(16);
    assert_eq!(
        *addr,
        section.address() + phase,
        "{name} is the first function of .text.omega_vm, {phase} bytes into it"
    );
}

/// `VmCore::run_slice` itself (not its closures or the iterators over them) under legacy
/// mangling (`_ZN10omega_lisp2vm6VmCore9run_slice17h…E`) or v0 (`_RNv…10omega_lisp2vm…6VmCore
/// 9run_slice`), with or without a `.llvm.…` suffix.
fn is_dispatch_loop(name: &str) -> bool {
    let base = name.split('.').next().unwrap_or(name);
    base.starts_with("_ZN10omega_lisp2vm6VmCore9run_slice17h")
        || (base.starts_with("_RNv")
            && base.contains("10omega_lisp2vm")
            && base.ends_with("6VmCore9run_slice"))
}

#[test]
fn the_binary_is_position_dependent_unless_asked() {
    let path = env!("CARGO_BIN_EXE_omega");
    let data = std::fs::read(path).expect("the omega binary can be read");
    let file = object::File::parse(&*data).expect("the omega binary is an object file");
    let want = if option_env!("OMEGA_PIE") == Some("1") {
        object::ObjectKind::Dynamic
    } else {
        object::ObjectKind::Executable
    };
    assert_eq!(
        file.kind(),
        want,
        "build.rs links with -no-pie unless OMEGA_PIE=1"
    );
    // Without PIE the loader has almost nothing to relocate (a few hundred symbol slots of
    // libc and friends, against ~25,600 relative relocations as a PIE).
    if want == object::ObjectKind::Executable {
        let rela = file
            .section_by_name(".rela.dyn")
            .map_or(0, |s| s.size() / 24);
        assert!(rela < 2_000, "{rela} dynamic relocations");
    }
}
