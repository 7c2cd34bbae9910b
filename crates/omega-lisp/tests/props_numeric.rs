//! Property tests for the integer procedures of SPEC §6.9 over the whole `i64` range, checked
//! in `i128` arithmetic: `floor/` and `truncate/` satisfy `n = q·d + r` with R7RS's sign rules,
//! `exact-integer-sqrt` gives `s² ≤ k < (s+1)²`, `gcd` divides its arguments, and the one
//! overflowing case (`i64::MIN` by `-1`) is an `:overflow` error, never a panic.

use omega_lisp::{ErrorKind, OutputBuffer, Runtime, Value};
use proptest::prelude::*;

fn eval(rt: &Runtime, src: &str) -> Result<Value, omega_lisp::LispError> {
    rt.eval_sync(src, "<p>")
}

fn ints(v: &Value) -> Vec<i128> {
    v.list_to_vec()
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_int)
        .map(i128::from)
        .collect()
}

/// Integers biased towards the edges of the range.
fn int() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        -100i64..100,
        prop::sample::select(vec![
            i64::MIN,
            i64::MIN + 1,
            i64::MAX,
            i64::MAX - 1,
            -1,
            0,
            1
        ]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn integer_division_identities(n in int(), d in int()) {
        let rt = Runtime::builder().output(OutputBuffer::new()).build();
        for op in ["floor/", "truncate/"] {
            let r = eval(&rt, &format!("(call-with-values (lambda () ({op} {n} {d})) list)"));
            if d == 0 {
                prop_assert_eq!(r.err().map(|e| e.kind().clone()), Some(ErrorKind::DivisionByZero));
            } else if n == i64::MIN && d == -1 {
                prop_assert_eq!(r.err().map(|e| e.kind().clone()), Some(ErrorKind::Overflow));
            } else {
                let v = r.map_err(|e| TestCaseError::fail(e.to_string()))?;
                let qr = ints(&v);
                prop_assert_eq!(qr.len(), 2);
                let (q, rem) = (qr[0], qr[1]);
                let (n, d) = (i128::from(n), i128::from(d));
                prop_assert_eq!(q * d + rem, n);
                prop_assert!(rem.abs() < d.abs());
                let sign_of = if op == "floor/" { d } else { n };
                prop_assert!(rem == 0 || (rem < 0) == (sign_of < 0), "{op} {n} {d}: remainder {rem}");
            }
        }
        if d != 0 {
            // The remainders are defined even where the quotient overflows.
            let fr = eval(&rt, &format!("(floor-remainder {n} {d})")).ok().and_then(|v| v.as_int());
            prop_assert!(fr.is_some());
        }
    }

    #[test]
    fn exact_integer_sqrt_is_exact(k in prop_oneof![0i64..=i64::MAX, 0i64..1000]) {
        let rt = Runtime::builder().output(OutputBuffer::new()).build();
        let v = eval(&rt, &format!("(call-with-values (lambda () (exact-integer-sqrt {k})) list)")).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let sr = ints(&v);
        prop_assert_eq!(sr.len(), 2);
        let (s, r) = (sr[0], sr[1]);
        let k = i128::from(k);
        prop_assert!(s * s <= k && k < (s + 1) * (s + 1));
        prop_assert_eq!(s * s + r, k);
    }

    #[test]
    fn gcd_divides_and_lcm_is_a_multiple(a in -1_000_000i64..1_000_000, b in -1_000_000i64..1_000_000) {
        let rt = Runtime::builder().output(OutputBuffer::new()).build();
        let g = eval(&rt, &format!("(gcd {a} {b})")).ok().and_then(|v| v.as_int());
        let g = g.ok_or_else(|| TestCaseError::fail("gcd failed"))?;
        prop_assert!(g >= 0);
        if g != 0 {
            prop_assert!(a % g == 0 && b % g == 0);
        }
        let l = eval(&rt, &format!("(lcm {a} {b})")).ok().and_then(|v| v.as_int());
        let l = l.ok_or_else(|| TestCaseError::fail("lcm failed"))?;
        prop_assert_eq!(i128::from(l) * i128::from(g), (i128::from(a) * i128::from(b)).abs());
    }
}
