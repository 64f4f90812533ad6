//! Just enough of Python's pickle to read where a TorchScript archive keeps its tensors.
//!
//! Input: the bytes of `data.pkl` from a `torch.jit.save` zip (protocol 2). Output: every
//! tensor reachable from the root object, by dotted attribute path (`_model.encoder.0.
//! reparam_conv.weight`), with the storage file it lives in, its offset, shape and strides.
//! Nothing is executed: classes are only names, and any opcode outside the small set that
//! TorchScript writes is refused, so a foreign or damaged file fails cleanly.

use std::collections::BTreeMap;

/// A pickled value, as far as tensor discovery needs it.
#[derive(Debug, Clone)]
enum Value {
    None,
    Bool,
    Int(i64),
    Float,
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String),
    /// `class(*args)` with the state `BUILD` gave it.
    Object {
        class: String,
        args: Vec<Value>,
        state: Option<Box<Value>>,
    },
    Persistent(Box<Value>),
    Mark,
}

/// Where one tensor's numbers are in the archive.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    /// The storage class, e.g. `torch FloatStorage`.
    pub storage_type: String,
    /// The file name under `data/` that holds the storage.
    pub storage_key: String,
    /// Offset into the storage, in elements.
    pub offset: u64,
    pub shape: Vec<u64>,
    pub strides: Vec<u64>,
}

/// Tensors by dotted path, or what stopped the reading.
pub fn tensors(data: &[u8]) -> Result<BTreeMap<String, TensorRef>, String> {
    let root = unpickle(data)?;
    let mut found = BTreeMap::new();
    collect(&root, "", &mut found);
    Ok(found)
}

fn collect(value: &Value, path: &str, found: &mut BTreeMap<String, TensorRef>) {
    let Value::Object { class, args, state } = value else { return };
    if class == "torch._utils _rebuild_tensor_v2" {
        if let Some(tensor) = tensor_ref(args) {
            found.insert(path.to_owned(), tensor);
        }
        return;
    }
    if let Some(Value::Dict(items)) = state.as_deref() {
        for (key, item) in items {
            if let Value::Str(key) = key {
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                collect(item, &child, found);
            }
        }
    }
}

/// `_rebuild_tensor_v2((\"storage\", type, key, device, numel), offset, shape, strides, ...)`.
fn tensor_ref(args: &[Value]) -> Option<TensorRef> {
    let [Value::Persistent(pid), Value::Int(offset), Value::Tuple(shape), Value::Tuple(strides), ..] = args else {
        return None;
    };
    let Value::Tuple(pid) = pid.as_ref() else { return None };
    let [Value::Str(kind), Value::Global(storage_type), Value::Str(storage_key), ..] = pid.as_slice() else {
        return None;
    };
    let ints = |values: &[Value]| -> Option<Vec<u64>> {
        values.iter().map(|v| if let Value::Int(n) = v { u64::try_from(*n).ok() } else { None }).collect()
    };
    (kind == "storage").then_some(())?;
    Some(TensorRef {
        storage_type: storage_type.clone(),
        storage_key: storage_key.clone(),
        offset: u64::try_from(*offset).ok()?,
        shape: ints(shape)?,
        strides: ints(strides)?,
    })
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.data.len()).ok_or("the pickle ends early")?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.at..];
        let end = rest.iter().position(|&b| b == b'\n').ok_or("the pickle ends early")?;
        let text = String::from_utf8(rest[..end].to_vec()).map_err(|_| "a name is not UTF-8")?;
        self.at += end + 1;
        Ok(text)
    }

    fn string(&mut self, n: usize) -> Result<String, String> {
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "a string is not UTF-8".to_owned())
    }
}

fn unpickle(data: &[u8]) -> Result<Value, String> {
    let mut r = Reader { data, at: 0 };
    let mut stack: Vec<Value> = Vec::new();
    let mut memo: BTreeMap<u32, Value> = BTreeMap::new();
    let pop = |stack: &mut Vec<Value>| stack.pop().ok_or_else(|| "the pickle pops an empty stack".to_owned());
    let pop_mark = |stack: &mut Vec<Value>| -> Result<Vec<Value>, String> {
        let mark = stack.iter().rposition(|v| matches!(v, Value::Mark)).ok_or("the pickle has no MARK")?;
        let items = stack.split_off(mark + 1);
        stack.pop();
        Ok(items)
    };
    loop {
        let op = r.u8()?;
        match op {
            0x80 => {
                r.u8()?;
            }
            b'.' => return pop(&mut stack),
            b'c' => {
                let module = r.line()?;
                let name = r.line()?;
                stack.push(Value::Global(format!("{module} {name}")));
            }
            b'q' | b'r' => {
                let index = if op == b'q' { u32::from(r.u8()?) } else { r.u32()? };
                memo.insert(index, stack.last().ok_or("the pickle memoizes an empty stack")?.clone());
            }
            b'h' | b'j' => {
                let index = if op == b'h' { u32::from(r.u8()?) } else { r.u32()? };
                stack.push(memo.get(&index).ok_or("the pickle reads a memo it never wrote")?.clone());
            }
            b'(' => stack.push(Value::Mark),
            b')' => stack.push(Value::Tuple(Vec::new())),
            b'}' => stack.push(Value::Dict(Vec::new())),
            b']' => stack.push(Value::List(Vec::new())),
            b't' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Value::Tuple(items));
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let at = stack.len().checked_sub(n).ok_or("the pickle pops an empty stack")?;
                let items = stack.split_off(at);
                stack.push(Value::Tuple(items));
            }
            b'X' => {
                let n = r.u32()? as usize;
                stack.push(Value::Str(r.string(n)?));
            }
            0x8c => {
                let n = usize::from(r.u8()?);
                stack.push(Value::Str(r.string(n)?));
            }
            b'J' => stack.push(Value::Int(i64::from(r.u32()? as i32))),
            b'K' => stack.push(Value::Int(i64::from(r.u8()?))),
            b'M' => {
                let bytes = r.take(2)?;
                stack.push(Value::Int(i64::from(u16::from_le_bytes([bytes[0], bytes[1]]))));
            }
            b'G' => {
                r.take(8)?;
                stack.push(Value::Float);
            }
            0x88 | 0x89 => stack.push(Value::Bool),
            b'N' => stack.push(Value::None),
            b'Q' => {
                let pid = pop(&mut stack)?;
                stack.push(Value::Persistent(Box::new(pid)));
            }
            b'R' | 0x81 => {
                let args = match pop(&mut stack)? {
                    Value::Tuple(args) => args,
                    _ => return Err("a call's arguments are not a tuple".to_owned()),
                };
                let class = match pop(&mut stack)? {
                    Value::Global(name) => name,
                    Value::Object { class, .. } => class,
                    _ => return Err("the pickle calls something that is not a class".to_owned()),
                };
                stack.push(Value::Object { class, args, state: None });
            }
            b'b' => {
                let new_state = pop(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::Object { state, .. }) => *state = Some(Box::new(new_state)),
                    _ => return Err("the pickle builds something that is not an object".to_owned()),
                }
            }
            b's' | b'u' => {
                let items = if op == b'u' {
                    pop_mark(&mut stack)?
                } else {
                    let value = pop(&mut stack)?;
                    vec![pop(&mut stack)?, value]
                };
                let Some(Value::Dict(dict)) = stack.last_mut() else {
                    return Err("the pickle sets an item on something that is not a dict".to_owned());
                };
                let mut items = items.into_iter();
                while let (Some(key), Some(value)) = (items.next(), items.next()) {
                    dict.push((key, value));
                }
            }
            b'a' | b'e' => {
                let items = if op == b'e' { pop_mark(&mut stack)? } else { vec![pop(&mut stack)?] };
                let Some(Value::List(list)) = stack.last_mut() else {
                    return Err("the pickle appends to something that is not a list".to_owned());
                };
                list.extend(items);
            }
            other => return Err(format!("unsupported pickle opcode 0x{other:02x}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_tensor_by_attribute_path() {
        // What torch writes for a module with one attribute `w`, a 2x3 float tensor in storage "0".
        let mut pickle = b"\x80\x02c__torch__\nM\nq\x00)\x81}(X\x01\x00\x00\x00w".to_vec();
        pickle
            .extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n");
        pickle.extend_from_slice(b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQK\x00K\x02K\x03\x86K\x03K\x01\x86\x89");
        pickle.extend_from_slice(b"ccollections\nOrderedDict\n)RtRub.");
        let found = tensors(&pickle).unwrap();
        let w = &found["w"];
        assert_eq!((w.storage_key.as_str(), w.offset), ("0", 0));
        assert_eq!((w.shape.as_slice(), w.strides.as_slice()), (&[2, 3][..], &[3, 1][..]));
        assert_eq!(w.storage_type, "torch FloatStorage");
    }

    #[test]
    fn foreign_or_cut_pickles_are_refused() {
        assert!(tensors(b"\x80\x02cos\nsystem\n").is_err());
        assert!(tensors(b"\x80\x04\x95").is_err());
        assert!(tensors(b"").is_err());
    }
}
