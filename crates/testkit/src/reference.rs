//! The PyTorch reference files (`crates/*/tests/reference/*.json`, written by the
//! `generate.py` beside each): reading them, comparing tensors with their stored values, and
//! running every case of a section against a Rust table of cases by name.
//!
//! A file is a JSON object with a `meta` entry (its `dtype` must be `float64`) and sections,
//! arrays of cases with a `name`. Tensors are stored as `{"shape": [...], "values": [...]}`
//! (row-major). Every comparison is `|got - want| <= tol * (1 + |want|)`.

use std::collections::BTreeSet;

use ferrograd_core::{DType, Tensor};
/// The JSON value type of the parsed files.
pub use serde_json::Value;

/// The outcome of checking one case: `Err` lists what differs.
pub type Check = std::result::Result<(), String>;

/// A `{"shape": [...], "values": [...]}` object of a reference file.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f64>,
}

impl Stored {
    /// Reads a stored tensor; `Err` says what is malformed.
    pub fn parse(v: &Value) -> std::result::Result<Stored, String> {
        let shape = v["shape"]
            .as_array()
            .ok_or("missing shape")?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize).ok_or("bad dimension"))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let values = v["values"]
            .as_array()
            .ok_or("missing values")?
            .iter()
            .map(|x| x.as_f64().ok_or("non-numeric value"))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if values.len() != shape.iter().product::<usize>() {
            return Err(format!("{} values for shape {shape:?}", values.len()));
        }
        Ok(Stored { shape, values })
    }

    /// The values as an f64 tensor.
    pub fn f64_tensor(&self) -> std::result::Result<Tensor, String> {
        Tensor::from_vec(self.values.clone(), &self.shape).map_err(|e| e.to_string())
    }

    /// The values rounded to f32.
    pub fn f32_tensor(&self) -> std::result::Result<Tensor, String> {
        let values = self.values.iter().map(|&v| v as f32).collect();
        Tensor::from_vec(values, &self.shape).map_err(|e| e.to_string())
    }

    /// The values as integers (class labels).
    pub fn i64_tensor(&self) -> std::result::Result<Tensor, String> {
        let values = self.values.iter().map(|&v| v as i64).collect();
        Tensor::from_vec(values, &self.shape).map_err(|e| e.to_string())
    }
}

/// `|got - want| <= tol * (1 + |want|)`; false for NaN.
pub fn close(got: f64, want: f64, tol: f64) -> bool {
    (got - want).abs() <= tol * (1.0 + want.abs())
}

/// Compares `got` with the reference `want`: dtype, shape and every value (listing each
/// mismatch).
pub fn compare(what: &str, got: &Tensor, dtype: DType, want: &Stored, tol: f64) -> Check {
    if got.dtype() != dtype {
        return Err(format!(
            "{what}: dtype {:?}, expected {dtype:?}",
            got.dtype()
        ));
    }
    if got.shape() != want.shape.as_slice() {
        return Err(format!(
            "{what}: shape {:?}, expected {:?}",
            got.shape(),
            want.shape
        ));
    }
    let bad: Vec<String> = got
        .to_vec_f64()
        .iter()
        .zip(&want.values)
        .enumerate()
        .filter(|(_, (g, w))| !close(**g, **w, tol))
        .map(|(i, (g, w))| format!("[{i}] got {g:e}, want {w:e}, diff {:.3e}", (g - w).abs()))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {} mismatches (tol {tol:e}): {}",
            bad.len(),
            bad.join("; ")
        ))
    }
}

/// Joins the failures of one case: `Ok` when there are none.
pub fn all_passed(failures: Vec<String>) -> Check {
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n    "))
    }
}

/// A parsed reference file.
pub struct Reference {
    file: &'static str,
    root: Value,
}

impl Reference {
    /// Parses the text of reference file `file` (its name, for messages).
    ///
    /// # Panics
    /// When the text is not JSON or its `meta.dtype` is not `float64` (a test failure).
    pub fn parse(text: &str, file: &'static str) -> Reference {
        let root: Value =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{file} is not JSON: {e}"));
        assert_eq!(
            root["meta"]["dtype"], "float64",
            "{file}: the reference must be float64"
        );
        Reference { file, root }
    }

    /// The whole file, for entries that are not case arrays.
    pub fn root(&self) -> &Value {
        &self.root
    }

    /// Runs every case of section `section` through its entry of `table` (looked up by the
    /// case's `name`). A case without an entry, an entry without a case, duplicate names and
    /// an empty section are failures too.
    ///
    /// # Panics
    /// Listing every failure, when there is one (a test failure).
    pub fn run_section<T>(
        &self,
        section: &str,
        table: &[(&str, T)],
        run: impl Fn(&Value, &T) -> Check,
    ) {
        let file = self.file;
        let cases = self.root[section]
            .as_array()
            .unwrap_or_else(|| panic!("no {section:?} array in {file}"));
        assert!(!cases.is_empty(), "no {section} cases in {file}");
        let table_names: BTreeSet<&str> = table.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            table_names.len(),
            table.len(),
            "duplicate name in the {section} table"
        );

        let mut seen = BTreeSet::new();
        let mut failures = Vec::new();
        for case in cases {
            let Some(name) = case["name"].as_str() else {
                failures.push("a JSON case has no name".to_string());
                continue;
            };
            if !seen.insert(name) {
                failures.push(format!("{name}: duplicate JSON case"));
            }
            match table.iter().find(|(n, _)| *n == name) {
                Some((_, entry)) => {
                    if let Err(msg) = run(case, entry) {
                        failures.push(format!("{name} ({}):\n    {msg}", case["expr"]));
                    }
                }
                None => failures.push(format!("{name}: JSON case has no Rust entry in the table")),
            }
        }
        for name in table_names.difference(&seen) {
            failures.push(format!(
                "{name}: in the Rust table but not in the {section} of {file}"
            ));
        }
        assert!(
            failures.is_empty(),
            "{} of {} {section} cases of {file} failed:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
    }
}

/// Rebuilds a forward case from its inputs, in the order the file lists them.
pub type ForwardFn = fn(&[Tensor]) -> ferrograd_core::Result<Tensor>;

/// Which inputs of a forward case the file gives gradients for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Differentiated {
    /// Every float input (the file has no per-input flag).
    FloatInputs,
    /// The inputs whose `grad` flag is true (the flag is required).
    Flagged,
}

/// How forward cases are checked. A forward case stores float64 (and int64) `inputs`, the
/// forward `output`, a `weight` of the output's shape and the `grads` of
/// `(output * weight).sum()` with respect to the differentiated inputs. The forward output and
/// the gradients are checked in f64, the forward output also in f32 (float inputs rounded).
#[derive(Debug, Clone, Copy)]
pub struct ForwardCheck {
    /// Which inputs are differentiated.
    pub differentiated: Differentiated,
    /// Tolerance of the f64 forward output and gradients.
    pub tol_f64: f64,
    /// Tolerance of the f32 forward output.
    pub tol_f32: f64,
}

impl ForwardCheck {
    /// Checks one forward case rebuilt by `f`.
    pub fn run(&self, case: &Value, f: ForwardFn) -> Check {
        let mut names = Vec::new();
        let mut inputs64 = Vec::new();
        let mut inputs32 = Vec::new();
        let mut differentiated = BTreeSet::new();
        for input in case["inputs"].as_array().ok_or("missing inputs")? {
            let name = input["name"].as_str().ok_or("input without name")?;
            let s = Stored::parse(input).map_err(|m| format!("input {name}: {m}"))?;
            let dtype = input["dtype"].as_str();
            let grad = match self.differentiated {
                Differentiated::FloatInputs => dtype == Some("float64"),
                Differentiated::Flagged => {
                    input["grad"].as_bool().ok_or("input without grad flag")?
                }
            };
            let (t64, t32) = match dtype {
                Some("float64") => (s.f64_tensor()?.with_requires_grad(grad), s.f32_tensor()?),
                Some("int64") if !grad => {
                    let t = s.i64_tensor()?;
                    (t.clone(), t)
                }
                other => return Err(format!("input {name}: unsupported dtype {other:?}")),
            };
            if grad {
                differentiated.insert(name);
            }
            names.push(name);
            inputs64.push(t64);
            inputs32.push(t32);
        }
        let grads_json = case["grads"].as_object().ok_or("missing grads")?;
        let grad_names: BTreeSet<&str> = grads_json.keys().map(String::as_str).collect();
        if grad_names != differentiated {
            return Err(format!(
                "JSON grads for {grad_names:?}, but the differentiated inputs are \
                 {differentiated:?}"
            ));
        }
        let want_out = Stored::parse(&case["output"]).map_err(|m| format!("output: {m}"))?;
        let w = Stored::parse(&case["weight"])
            .map_err(|m| format!("weight: {m}"))?
            .f64_tensor()?;

        let mut failures = Vec::new();
        let out = f(&inputs64).map_err(|e| format!("f64 forward: {e}"))?;
        failures.extend(compare("f64 forward", &out, DType::F64, &want_out, self.tol_f64).err());
        let grads = out
            .mul(&w)
            .and_then(|l| l.sum_all())
            .and_then(|l| l.backward())
            .map_err(|e| format!("backward: {e}"))?;
        for (name, t) in names.iter().zip(&inputs64) {
            if !differentiated.contains(name) {
                continue;
            }
            let want =
                Stored::parse(&grads_json[*name]).map_err(|m| format!("grad {name}: {m}"))?;
            match grads.get(t) {
                Some(g) => {
                    let what = format!("f64 grad of {name}");
                    failures.extend(compare(&what, g, DType::F64, &want, self.tol_f64).err());
                }
                None => failures.push(format!("no gradient for input {name}")),
            }
        }
        match f(&inputs32) {
            Ok(out) => failures
                .extend(compare("f32 forward", &out, DType::F32, &want_out, self.tol_f32).err()),
            Err(e) => failures.push(format!("f32 forward: {e}")),
        }
        all_passed(failures)
    }
}
