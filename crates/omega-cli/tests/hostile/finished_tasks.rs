//! Class 9: a finished task that nobody awaits or holds costs nothing while the script
//! lives (it used to stay in the runtime's table of live tasks, ~1.8 KB each).

use super::run_script;

/// Peak RSS of `rounds` rounds of 20,000 unawaited tasks, each round waited out.
fn peak_after(rounds: u64) -> u64 {
    let r = run_script(
        &["--stats"],
        &format!(
            "(define (spawn-n n) (if (> n 0) (begin (async (lambda () 1)) (spawn-n (- n 1))) :done))
             (define (rounds k) (if (> k 0) (begin (spawn-n 20000) (sleep 20) (rounds (- k 1))) :done))
             (rounds {rounds})"
        ),
    );
    r.assert_no_crash();
    assert_eq!(r.code, Some(0), "{r:?}");
    r.peak_rss()
}

#[test]
fn finished_unawaited_tasks_are_not_retained() {
    let one = peak_after(1);
    let ten = peak_after(10);
    assert!(
        ten <= one + one / 10 + (2 << 20),
        "memory grew with finished tasks: {one} bytes after 20,000, {ten} after 200,000"
    );
}
