//! The core language the expander produces and the compiler consumes: special forms desugared,
//! macros expanded, every variable resolved to a [`VarId`] or a global slot.

use crate::bytecode::PrimOp;
use crate::symbol::Symbol;
use crate::value::Value;

/// Index into the expander's variable table.
pub(crate) type VarId = u32;

/// What the compiler needs to know about a variable.
#[derive(Clone, Debug)]
pub(crate) struct VarInfo {
    /// Lambda nesting level that binds it.
    pub(crate) fn_depth: u32,
    /// Referenced from a nested lambda.
    pub(crate) captured: bool,
    /// Target of `set!`.
    pub(crate) assigned: bool,
    /// Bound by `letrec`/internal `define` (initialised after closures may capture it).
    pub(crate) letrec: bool,
}

impl VarInfo {
    /// Whether the variable must live in a cell (captured and possibly changed after capture).
    pub(crate) fn boxed(&self) -> bool {
        self.captured && (self.assigned || self.letrec)
    }
}

/// A core expression with its source position (line, col).
#[derive(Debug)]
pub(crate) struct Expr {
    pub(crate) kind: ExprKind,
    pub(crate) pos: (u32, u32),
}

/// A lambda: parameters, optional rest parameter, body.
#[derive(Debug)]
pub(crate) struct Lambda {
    pub(crate) name: String,
    pub(crate) params: Vec<VarId>,
    pub(crate) rest: Option<VarId>,
    pub(crate) body: Expr,
}

/// The core forms.
#[derive(Debug)]
pub(crate) enum ExprKind {
    Const(Value),
    Local(VarId),
    Global(u32),
    SetLocal(VarId, Box<Expr>),
    SetGlobal(u32, Box<Expr>),
    /// Defines the global and evaluates to its name.
    DefGlobal(u32, Box<Expr>, Symbol),
    DefMacro(u32, Box<Expr>, Symbol),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    Lambda(Box<Lambda>),
    Call(Box<Expr>, Vec<Expr>),
    Prim(PrimOp, Vec<Expr>),
    Seq(Vec<Expr>),
    /// Parallel `let`: inits are evaluated outside the new scope.
    Let(Vec<(VarId, Expr)>, Box<Expr>),
    /// Binds the variables (to nil) and evaluates the body, which assigns them (`letrec*`).
    Letrec(Vec<VarId>, Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Try {
        body: Box<Expr>,
        catch: Option<Catch>,
        finally: Option<(VarId, Box<Expr>)>,
    },
    /// `(shield body…)`: the task's cancellation is not raised while the body runs (SPEC
    /// §6.5); the body is not in tail position.
    Shield(Box<Expr>),
}

/// A `catch` clause: `(catch e handler…)` or `(catch e :cancelled handler…)`.
#[derive(Debug)]
pub(crate) struct Catch {
    /// The variable bound to the error.
    pub var: VarId,
    pub handler: Box<Expr>,
    /// `:cancelled` was named: the handler may end a cancellation (its value is the
    /// `try`'s). A bare catch sees a cancellation but raises it again when it ends.
    pub ends_cancel: bool,
}

impl Expr {
    pub(crate) fn new(kind: ExprKind, pos: (u32, u32)) -> Expr {
        Expr { kind, pos }
    }
}
