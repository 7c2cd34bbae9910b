//! Data: `json-parse json-stringify` (objects ↔ maps with string keys, arrays ↔ lists,
//! null ↔ nil).

use crate::builtins::{def, str_arg};
use crate::convert;
use crate::error::{LispError, LispResult};
use crate::state::State;
use crate::value::Value;

fn json_parse(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let text = str_arg("json-parse", &a[0])?;
    let j: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| LispError::new(crate::error::ErrorKind::Error, format!("json-parse: {e}")))?;
    st.check_heap()?;
    let v = convert::from_json(&j);
    st.check_heap()?;
    Ok(v)
}

fn json_stringify(st: &mut State, a: &[Value]) -> LispResult<Value> {
    let text = crate::json::stringify(&a[0], st.limits.max_string_len)?;
    st.make_string(text)
}

pub(crate) fn install(st: &mut State) {
    def(st, "json-parse", 1, Some(1), json_parse);
    def(st, "json-stringify", 1, Some(1), json_stringify);
}
