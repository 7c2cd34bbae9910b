//! The Omega Lisp (in progress).
