//! Small SQL helpers shared by the crates that write their own queries.

/// `($from, $from+1, …)` for `n` bound values, e.g. the list of an `IN`.
pub fn placeholders(from: usize, n: usize) -> String {
    format!("({})", (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", "))
}

/// A query on either backend, as `sqlx::query` builds it.
pub type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds every value in order: the values of an `IN` list made by [`placeholders`].
pub fn bind_all<'q, S: AsRef<str>>(mut q: AnyQuery<'q>, values: &[S]) -> AnyQuery<'q> {
    for v in values {
        q = q.bind(v.as_ref().to_string());
    }
    q
}

/// An optional `DOUBLE PRECISION` value to bind: `.bind(Float(x))`, never `.bind(x)` with an
/// `Option<f64>`. sqlx 0.8's `Any` driver turns a NULL `f64` into a PostgreSQL `float4` NULL (its
/// Real and Double NULL mappings are swapped); the connection caches the statement with that
/// parameter type and refuses every later value of the same statement ("incorrect binary data
/// format in bind parameter"), so a report without a temperature broke the next one with it. A
/// NULL bound through `Float` is a `float8` NULL; `tests/float.rs` pins the driver's behaviour,
/// so an sqlx that fixes the mapping shows up there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Float(pub Option<f64>);

impl sqlx::Type<sqlx::Any> for Float {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <f64 as sqlx::Type<sqlx::Any>>::type_info()
    }
}

impl<'q> sqlx::Encode<'q, sqlx::Any> for Float {
    fn encode_by_ref(
        &self,
        buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        match self.0 {
            Some(v) => <f64 as sqlx::Encode<'q, sqlx::Any>>::encode_by_ref(&v, buf),
            // A NULL of the `f32` kind is what sqlx 0.8 converts into an `f64` NULL (see above).
            None => <Option<f32> as sqlx::Encode<'q, sqlx::Any>>::encode_by_ref(&None, buf),
        }
    }
}

/// `($1,$2,$3),($4,$5,$6)` for `rows` rows of `width` bound values: a multi-row `VALUES` list.
pub fn values_placeholders(rows: usize, width: usize) -> String {
    let mut out = String::with_capacity(rows * width * 4);
    for r in 0..rows {
        if r > 0 {
            out.push(',');
        }
        out.push('(');
        for c in 0..width {
            if c > 0 {
                out.push(',');
            }
            out.push_str(&format!("${}", r * width + c + 1));
        }
        out.push(')');
    }
    out
}

/// A stable 64-bit key for `name` (FNV-1a), e.g. for `pg_advisory_xact_lock`.
pub fn lock_key(name: &str) -> i64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)) as i64
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_number_from_the_first() {
        assert_eq!(super::placeholders(3, 2), "($3, $4)");
        assert_eq!(super::values_placeholders(2, 3), "($1,$2,$3),($4,$5,$6)");
        assert_eq!(super::lock_key("a"), super::lock_key("a"));
        assert_ne!(super::lock_key("a"), super::lock_key("b"));
    }
}
