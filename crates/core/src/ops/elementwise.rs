//! Elementwise operations: unary functions, broadcasting binary arithmetic, comparisons,
//! `where`, `clamp` and dtype conversion.

use super::apply;
use crate::op::{BinaryOp, CmpOp, Op, UnaryOp};
use crate::{DType, Error, Result, Tensor, shape::broadcast_shapes};

macro_rules! unary_methods {
    ($($name:ident => $op:ident, $torch:literal, $expected:expr;)*) => {$(
        #[doc = concat!("Elementwise `", stringify!($name), "` (PyTorch `", $torch, "`).")]
        ///
        /// ```
        /// use ferrograd_core::Tensor;
        #[doc = concat!("let y = Tensor::from_vec(vec![0.5f64], &[1])?.", stringify!($name), "()?;")]
        #[doc = concat!("let expected: f64 = ", stringify!($expected), ";")]
        /// assert!((y.item()? - expected).abs() < 1e-12);
        /// # Ok::<(), ferrograd_core::Error>(())
        /// ```
        ///
        /// # Errors
        /// [`Error::UnsupportedDType`] for integer tensors, except `neg`, `abs` and `relu`.
        pub fn $name(&self) -> Result<Tensor> {
            apply(Op::Unary(UnaryOp::$op), &[self])
        }
    )*};
}

macro_rules! binary_methods {
    ($($name:ident, $scalar:ident => $op:ident, $torch:literal, $expected:expr;)*) => {$(
        #[doc = concat!("Elementwise `", stringify!($name), "` with broadcasting (PyTorch `", $torch, "`).")]
        ///
        /// ```
        /// use ferrograd_core::Tensor;
        /// let a = Tensor::from_vec(vec![3.0f64, 4.0], &[2, 1])?;
        /// let b = Tensor::from_vec(vec![2.0f64], &[1])?;
        #[doc = concat!("let y = a.", stringify!($name), "(&b)?;")]
        /// assert_eq!(y.shape(), &[2, 1]);
        #[doc = concat!("let expected: f64 = ", stringify!($expected), ";")]
        /// assert!((y.to_vec::<f64>()?[0] - expected).abs() < 1e-12);
        /// # Ok::<(), ferrograd_core::Error>(())
        /// ```
        ///
        /// # Errors
        /// [`Error::Broadcast`] for incompatible shapes, [`Error::DTypeMismatch`] for different
        /// dtypes.
        pub fn $name(&self, rhs: &Tensor) -> Result<Tensor> {
            self.binary(rhs, BinaryOp::$op)
        }

        #[doc = concat!("[`Tensor::", stringify!($name), "`] with a scalar right operand, converted to this tensor's dtype.")]
        ///
        /// # Errors
        /// As the tensor version.
        pub fn $scalar(&self, rhs: f64) -> Result<Tensor> {
            self.binary(&self.scalar_like(rhs), BinaryOp::$op)
        }
    )*};
}

macro_rules! cmp_methods {
    ($($name:ident, $scalar:ident => $op:ident, $torch:literal;)*) => {$(
        #[doc = concat!("Elementwise comparison `", stringify!($name), "` with broadcasting (PyTorch `", $torch, "`).")]
        /// The mask has the operands' dtype: 1 where true, 0 where false. It carries no gradient.
        ///
        /// ```
        /// use ferrograd_core::Tensor;
        /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3])?;
        #[doc = concat!("let m = a.", stringify!($scalar), "(2.0)?;")]
        /// assert_eq!(m.shape(), &[3]);
        /// # Ok::<(), ferrograd_core::Error>(())
        /// ```
        ///
        /// # Errors
        /// [`Error::Broadcast`] for incompatible shapes, [`Error::DTypeMismatch`] for different
        /// dtypes.
        pub fn $name(&self, rhs: &Tensor) -> Result<Tensor> {
            let (a, b) = self.broadcast_pair(rhs, CmpOp::$op.name())?;
            apply(Op::Cmp(CmpOp::$op), &[&a, &b])
        }

        #[doc = concat!("[`Tensor::", stringify!($name), "`] against a scalar.")]
        ///
        /// # Errors
        /// As the tensor version.
        pub fn $scalar(&self, rhs: f64) -> Result<Tensor> {
            self.$name(&self.scalar_like(rhs))
        }
    )*};
}

impl Tensor {
    unary_methods! {
        neg => Neg, "torch.neg", -0.5;
        exp => Exp, "torch.exp", 0.5f64.exp();
        expm1 => Expm1, "torch.expm1", 0.5f64.exp_m1();
        log => Log, "torch.log", 0.5f64.ln();
        log1p => Log1p, "torch.log1p", 0.5f64.ln_1p();
        sqrt => Sqrt, "torch.sqrt", 0.5f64.sqrt();
        abs => Abs, "torch.abs", 0.5;
        tanh => Tanh, "torch.tanh", 0.5f64.tanh();
        sigmoid => Sigmoid, "torch.sigmoid", 1.0 / (1.0 + (-0.5f64).exp());
        relu => Relu, "torch.relu", 0.5;
        recip => Recip, "torch.reciprocal", 2.0;
        erf => Erf, "torch.erf", 0.520_499_877_813_046_5;
        sin => Sin, "torch.sin", 0.5f64.sin();
        cos => Cos, "torch.cos", 0.5f64.cos();
        atan => Atan, "torch.atan", 0.5f64.atan();
        asin => Asin, "torch.asin", 0.5f64.asin();
        acos => Acos, "torch.acos", 0.5f64.acos();
        floor => Floor, "torch.floor; zero gradient", 0.0;
        ceil => Ceil, "torch.ceil; zero gradient", 1.0;
        round => Round, "torch.round, halves to even; zero gradient", 0.0;
    }

    binary_methods! {
        add, add_scalar => Add, "torch.add", 5.0;
        sub, sub_scalar => Sub, "torch.sub", 1.0;
        mul, mul_scalar => Mul, "torch.mul", 6.0;
        div, div_scalar => Div, "torch.div", 1.5;
        pow, pow_scalar => Pow, "torch.pow", 9.0;
        maximum, maximum_scalar => Maximum, "torch.maximum", 3.0;
        minimum, minimum_scalar => Minimum, "torch.minimum", 2.0;
    }

    cmp_methods! {
        eq, eq_scalar => Eq, "torch.eq";
        ne, ne_scalar => Ne, "torch.ne";
        lt, lt_scalar => Lt, "torch.lt";
        le, le_scalar => Le, "torch.le";
        gt, gt_scalar => Gt, "torch.gt";
        ge, ge_scalar => Ge, "torch.ge";
    }

    /// Broadcasts two tensors of one dtype to their common shape.
    fn broadcast_pair(&self, rhs: &Tensor, op: &'static str) -> Result<(Tensor, Tensor)> {
        if self.dtype() != rhs.dtype() {
            return Err(Error::DTypeMismatch {
                op,
                lhs: self.dtype(),
                rhs: rhs.dtype(),
            });
        }
        let shape = broadcast_shapes(op, self.shape(), rhs.shape())?;
        Ok((self.broadcast_to(&shape)?, rhs.broadcast_to(&shape)?))
    }

    fn binary(&self, rhs: &Tensor, op: BinaryOp) -> Result<Tensor> {
        let (a, b) = self.broadcast_pair(rhs, op.name())?;
        apply(Op::Binary(op), &[&a, &b])
    }

    /// `x^e` for a constant exponent (PyTorch `torch.pow(x, e)` with a Python float).
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let y = Tensor::from_vec(vec![3.0f32], &[1])?.powf(2.0)?;
    /// assert_eq!(y.to_vec::<f32>()?, vec![9.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::UnsupportedDType`] for integer tensors.
    pub fn powf(&self, e: f64) -> Result<Tensor> {
        apply(Op::Powf(e), &[self])
    }

    /// `x * x` (PyTorch `torch.square`).
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let y = Tensor::from_vec(vec![-3.0f64], &[1])?.square()?;
    /// assert_eq!(y.item()?, 9.0);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::UnsupportedDType`] for integer tensors.
    pub fn square(&self) -> Result<Tensor> {
        self.powf(2.0)
    }

    /// -1, 0 or 1 by the sign of each element (PyTorch `torch.sign`); carries no gradient.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let s = Tensor::from_vec(vec![-2.0f64, 0.0, 3.0], &[3])?.sign()?;
    /// assert_eq!(s.to_vec::<f64>()?, vec![-1.0, 0.0, 1.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// Never for valid tensors; kept fallible like every op.
    pub fn sign(&self) -> Result<Tensor> {
        self.gt_scalar(0.0)?.sub(&self.lt_scalar(0.0)?)
    }

    /// Elementwise selection `cond ? on_true : on_false` with broadcasting (PyTorch
    /// `torch.where`). `cond` may have any dtype; nonzero means true.
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let x = Tensor::from_vec(vec![-1.0f32, 2.0], &[2])?;
    /// let y = Tensor::where_cond(&x.gt_scalar(0.0)?, &x, &x.zeros_like())?;
    /// assert_eq!(y.to_vec::<f32>()?, vec![0.0, 2.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Broadcast`] for incompatible shapes, [`Error::DTypeMismatch`] when `on_true` and
    /// `on_false` differ in dtype.
    pub fn where_cond(cond: &Tensor, on_true: &Tensor, on_false: &Tensor) -> Result<Tensor> {
        let (a, b) = on_true.broadcast_pair(on_false, "where")?;
        let shape = broadcast_shapes("where", cond.shape(), a.shape())?;
        let c = cond.detach().to_dtype(a.dtype())?.broadcast_to(&shape)?;
        apply(
            Op::Where,
            &[&c, &a.broadcast_to(&shape)?, &b.broadcast_to(&shape)?],
        )
    }

    /// Limits values to `[min, max]` (PyTorch `torch.clamp`); NaN stays NaN. The gradient is
    /// 1 strictly inside the interval and 0 elsewhere, the bounds themselves and NaN included,
    /// as in PyTorch (see `docs/conventions.md`).
    ///
    /// ```
    /// use ferrograd_core::Tensor;
    /// let y = Tensor::from_vec(vec![-2.0f64, 0.5, 3.0], &[3])?.clamp(-1.0, 1.0)?;
    /// assert_eq!(y.to_vec::<f64>()?, vec![-1.0, 0.5, 1.0]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Argument`] when `min > max` or either is NaN.
    pub fn clamp(&self, min: f64, max: f64) -> Result<Tensor> {
        if min.is_nan() || max.is_nan() || min > max {
            return Err(Error::Argument {
                op: "clamp",
                msg: format!("invalid range [{min}, {max}]"),
            });
        }
        // The gradient flows where min < x < max; elsewhere (the bounds and NaN included) the
        // value is the clamped constant, which a NaN passes through.
        let inside = self.gt_scalar(min)?.mul(&self.lt_scalar(max)?)?;
        let outside = self.detach().maximum_scalar(min)?.minimum_scalar(max)?;
        Tensor::where_cond(&inside, self, &outside)
    }

    /// Converts to another dtype (PyTorch `tensor.to(dtype)`); floats to integers truncate.
    /// Gradients flow back through float-to-float conversions.
    ///
    /// ```
    /// use ferrograd_core::{DType, Tensor};
    /// let y = Tensor::from_vec(vec![1.7f32, -1.7], &[2])?.to_dtype(DType::I64)?;
    /// assert_eq!(y.to_vec::<i64>()?, vec![1, -1]);
    /// # Ok::<(), ferrograd_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// Never for valid tensors; kept fallible like every op.
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        if !dtype.is_float() {
            return apply(Op::Cast(dtype), &[&self.detach()]);
        }
        apply(Op::Cast(dtype), &[self])
    }
}
