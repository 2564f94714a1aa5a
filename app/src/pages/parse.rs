//! Reading what people type into the calculator form: shapes (`2,2`), values (numbers separated by
//! spaces, commas or newlines, row-major), seeds and reduction dimensions. Pure functions; every
//! error is a sentence that says what to fix, shown inline and nothing is sent.

use crate::tensor::MAX_DIMS;

/// Characters that separate items; brackets are allowed so `[[1,2],[3,4]]` pastes cleanly.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | ';' | '[' | ']' | '(' | ')')
}

/// A shape such as `2,2`, `2 x 3`, `[4]`. Empty (or `[]`) is a scalar.
pub fn parse_shape(text: &str) -> Result<Vec<usize>, String> {
    let mut dims = Vec::new();
    for token in text.split(|c: char| is_separator(c) || matches!(c, 'x' | 'X' | '×' | '*')) {
        if token.is_empty() {
            continue;
        }
        let dim: usize = token
            .parse()
            .map_err(|_| format!("shape: \"{token}\" is not a whole number (write e.g. 2,3)"))?;
        if dim == 0 {
            return Err("shape: every dimension must be at least 1".into());
        }
        dims.push(dim);
    }
    if dims.len() > MAX_DIMS {
        return Err(format!(
            "shape: {} dimensions given; at most {MAX_DIMS} are supported",
            dims.len()
        ));
    }
    Ok(dims)
}

/// Row-major values. Accepts `NaN`, `inf`, `Infinity`, `-Infinity` (any case, quoted or not).
pub fn parse_values(text: &str) -> Result<Vec<f32>, String> {
    let mut values = Vec::new();
    for token in text.split(is_separator) {
        let token = token.trim_matches('"');
        if token.is_empty() {
            continue;
        }
        let value: f32 = token.parse().map_err(|_| {
            format!(
                "values: \"{token}\" (item {}) is not a number",
                values.len() + 1
            )
        })?;
        let spelled_infinite = token
            .trim_start_matches(['+', '-'])
            .to_ascii_lowercase()
            .starts_with("inf");
        if value.is_infinite() && !spelled_infinite {
            return Err(format!(
                "values: {token} (item {}) is too large for a 32-bit float",
                values.len() + 1
            ));
        }
        values.push(value);
    }
    Ok(values)
}

/// An optional random seed: empty is none.
pub fn parse_seed(text: &str) -> Result<Option<u64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        format!(
            "seed: \"{text}\" is not a whole number from 0 to {}",
            u64::MAX
        )
    })
}

/// An optional reduction dimension for an operand of `rank` dimensions: empty is none.
pub fn parse_dim(text: &str, rank: usize) -> Result<Option<usize>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let dim: usize = text
        .parse()
        .map_err(|_| format!("dim: \"{text}\" is not a whole number"))?;
    if dim >= rank {
        return Err(match rank {
            0 => "dim: a scalar has no dimension to reduce over; leave dim empty".into(),
            _ => format!(
                "dim: {dim} is out of range; the operand has dimensions 0 to {}",
                rank - 1
            ),
        });
    }
    Ok(Some(dim))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_in_the_usual_spellings() {
        assert_eq!(parse_shape("2,2"), Ok(vec![2, 2]));
        assert_eq!(parse_shape(" 2 x 3 "), Ok(vec![2, 3]));
        assert_eq!(parse_shape("[4]"), Ok(vec![4]));
        assert_eq!(parse_shape("1×2×3×4"), Ok(vec![1, 2, 3, 4]));
        assert_eq!(parse_shape(""), Ok(vec![]));
        assert_eq!(parse_shape("[]"), Ok(vec![]));
    }

    #[test]
    fn bad_shapes_explain_themselves() {
        assert!(parse_shape("2,a")
            .unwrap_err()
            .contains("\"a\" is not a whole number"));
        assert!(parse_shape("2,-1")
            .unwrap_err()
            .contains("not a whole number"));
        assert!(parse_shape("2,0").unwrap_err().contains("at least 1"));
        assert!(parse_shape("1,1,1,1,1").unwrap_err().contains("at most 4"));
    }

    #[test]
    fn values_with_any_separator_and_non_finite_spellings() {
        assert_eq!(parse_values("1 2\n3,4"), Ok(vec![1., 2., 3., 4.]));
        assert_eq!(parse_values("[[1, 2], [3, 4]]"), Ok(vec![1., 2., 3., 4.]));
        assert_eq!(parse_values("-1.5e2; 0.25"), Ok(vec![-150., 0.25]));
        let v = parse_values("NaN \"Infinity\" -inf").unwrap();
        assert!(v[0].is_nan());
        assert_eq!(v[1], f32::INFINITY);
        assert_eq!(v[2], f32::NEG_INFINITY);
        assert_eq!(parse_values("  "), Ok(vec![]));
    }

    #[test]
    fn bad_values_explain_themselves() {
        assert!(parse_values("1 2 x")
            .unwrap_err()
            .contains("\"x\" (item 3) is not a number"));
        assert!(parse_values("1e300").unwrap_err().contains("too large"));
    }

    #[test]
    fn seeds_and_dims() {
        assert_eq!(parse_seed(""), Ok(None));
        assert_eq!(parse_seed(" 7 "), Ok(Some(7)));
        assert!(parse_seed("-1").is_err());
        assert_eq!(parse_dim("", 2), Ok(None));
        assert_eq!(parse_dim("1", 2), Ok(Some(1)));
        assert!(parse_dim("2", 2).unwrap_err().contains("0 to 1"));
        assert!(parse_dim("0", 0).unwrap_err().contains("scalar"));
    }
}
