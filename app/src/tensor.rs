//! Tensors on the wire: the literal `{"shape":[..],"data":[..]}` form, the generator form
//! `{"fill":"random","shape":[..],"seed":7}`, and how non-finite numbers cross JSON.
//!
//! JSON has no NaN or infinity, so `data` arrays carry finite numbers as JSON numbers and the three
//! non-finite values as the strings `"NaN"`, `"Infinity"` and `"-Infinity"` (the convention of the
//! protobuf JSON mapping). Inputs accept the same strings, so any output can be sent back as input.
//! Plain data, no concurrency: these types are shared by the browser and the server.

use serde::{Deserialize, Serialize};

/// Most dimensions a tensor may have. Four covers batches of images and of attention heads.
pub const MAX_DIMS: usize = 4;

/// A dense, row-major f32 tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    /// Size of each dimension; `[]` is a scalar holding one value.
    pub shape: Vec<usize>,
    /// The values in row-major order; its length is the product of `shape`.
    #[serde(with = "finite_json")]
    pub data: Vec<f32>,
}

impl Tensor {
    /// A tensor after checking that `data` fills `shape` exactly.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self, String> {
        check_shape(&shape)?;
        let n = element_count(&shape);
        if n != data.len() {
            return Err(format!(
                "data has {} values but shape {:?} holds {} (the product of its dimensions)",
                data.len(),
                shape,
                n
            ));
        }
        Ok(Tensor { shape, data })
    }
}

/// The product of the dimensions; `[]` counts one element. Saturates instead of overflowing, so
/// absurd shapes still fail the element cap rather than wrapping.
pub fn element_count(shape: &[usize]) -> usize {
    shape.iter().fold(1usize, |n, &d| n.saturating_mul(d))
}

fn check_shape(shape: &[usize]) -> Result<(), String> {
    if shape.len() > MAX_DIMS {
        return Err(format!(
            "shape {shape:?} has {} dimensions; at most {MAX_DIMS} are supported",
            shape.len()
        ));
    }
    Ok(())
}

/// How a generated operand is filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fill {
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
    /// The identity: ones where the last two indices are equal (needs at least 2 dimensions).
    Eye,
    /// Uniform in [0, 1) from a ChaCha8 generator seeded with `seed` (0 when absent), so the same
    /// request always gives the same tensor on every machine.
    Random,
}

/// An operand: literal values or a generator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawTensorInput", into = "RawTensorInput")]
pub enum TensorInput {
    /// Values given in full.
    Literal(Tensor),
    /// Values made on the device from a recipe.
    Generated {
        /// The recipe.
        fill: Fill,
        /// The shape to fill.
        shape: Vec<usize>,
        /// Seed for [`Fill::Random`]; ignored by the other fills.
        seed: Option<u64>,
    },
}

impl TensorInput {
    /// The shape this operand will have.
    pub fn shape(&self) -> &[usize] {
        match self {
            TensorInput::Literal(t) => &t.shape,
            TensorInput::Generated { shape, .. } => shape,
        }
    }
}

/// The flat form both variants share on the wire; exactly one of `data` and `fill` is present.
#[derive(Serialize, Deserialize)]
struct RawTensorInput {
    shape: Vec<usize>,
    #[serde(
        default,
        with = "finite_json_opt",
        skip_serializing_if = "Option::is_none"
    )]
    data: Option<Vec<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fill: Option<Fill>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
}

impl TryFrom<RawTensorInput> for TensorInput {
    type Error = String;

    fn try_from(raw: RawTensorInput) -> Result<Self, String> {
        match (raw.data, raw.fill) {
            (Some(data), None) => Tensor::new(raw.shape, data).map(TensorInput::Literal),
            (None, Some(fill)) => {
                check_shape(&raw.shape)?;
                if fill == Fill::Eye && raw.shape.len() < 2 {
                    return Err(format!(
                        "fill \"eye\" needs at least 2 dimensions, got shape {:?}",
                        raw.shape
                    ));
                }
                Ok(TensorInput::Generated {
                    fill,
                    shape: raw.shape,
                    seed: raw.seed,
                })
            }
            (Some(_), Some(_)) => {
                Err("a tensor gives either \"data\" or \"fill\", not both".into())
            }
            (None, None) => Err(
                "a tensor needs \"data\" (row-major values) or \"fill\" (zeros, ones, eye, random)"
                    .into(),
            ),
        }
    }
}

impl From<TensorInput> for RawTensorInput {
    fn from(t: TensorInput) -> Self {
        match t {
            TensorInput::Literal(t) => RawTensorInput {
                shape: t.shape,
                data: Some(t.data),
                fill: None,
                seed: None,
            },
            TensorInput::Generated { fill, shape, seed } => RawTensorInput {
                shape,
                data: None,
                fill: Some(fill),
                seed,
            },
        }
    }
}

/// Serde for `Vec<f32>` that writes non-finite values as strings and reads them back.
pub mod finite_json {
    use serde::de::{self, SeqAccess, Visitor};
    use serde::ser::SerializeSeq;
    use serde::{Deserializer, Serializer};
    use std::fmt;

    /// Writes finite values as numbers and the rest as `"NaN"`, `"Infinity"`, `"-Infinity"`.
    pub fn serialize<S: Serializer>(data: &[f32], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(data.len()))?;
        for &v in data {
            if v.is_finite() {
                seq.serialize_element(&v)?;
            } else if v.is_nan() {
                seq.serialize_element("NaN")?;
            } else if v > 0.0 {
                seq.serialize_element("Infinity")?;
            } else {
                seq.serialize_element("-Infinity")?;
            }
        }
        seq.end()
    }

    /// Reads numbers and the three non-finite strings.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        d.deserialize_seq(DataVisitor)
    }

    struct DataVisitor;

    impl<'de> Visitor<'de> for DataVisitor {
        type Value = Vec<f32>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array of numbers (or \"NaN\", \"Infinity\", \"-Infinity\")")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f32>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(Scalar(v)) = seq.next_element()? {
                out.push(v);
            }
            Ok(out)
        }
    }

    /// One element: a number or one of the non-finite strings.
    struct Scalar(f32);

    impl<'de> serde::Deserialize<'de> for Scalar {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(ScalarVisitor)
        }
    }

    struct ScalarVisitor;

    impl Visitor<'_> for ScalarVisitor {
        type Value = Scalar;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number, \"NaN\", \"Infinity\" or \"-Infinity\"")
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
            let x = v as f32;
            if v.is_finite() && !x.is_finite() {
                return Err(E::custom(format!("{v} is out of range for f32")));
            }
            Ok(Scalar(x))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
            Ok(Scalar(v as f32))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
            Ok(Scalar(v as f32))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
            match v {
                "NaN" => Ok(Scalar(f32::NAN)),
                "Infinity" => Ok(Scalar(f32::INFINITY)),
                "-Infinity" => Ok(Scalar(f32::NEG_INFINITY)),
                other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
            }
        }
    }
}

/// [`finite_json`] for an optional array.
mod finite_json_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &Option<Vec<f32>>, s: S) -> Result<S::Ok, S::Error> {
        match data {
            Some(d) => super::finite_json::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<f32>>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::finite_json")] Vec<f32>);
        Option::<Wrap>::deserialize(d).map(|o| o.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn non_finite_values_round_trip_as_strings() {
        let t = Tensor::new(
            vec![4],
            vec![1.5, f32::NAN, f32::INFINITY, f32::NEG_INFINITY],
        )
        .unwrap();
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(
            v,
            json!({"shape":[4],"data":[1.5,"NaN","Infinity","-Infinity"]})
        );
        let back: Tensor = serde_json::from_value(v).unwrap();
        assert_eq!(back.data[0], 1.5);
        assert!(back.data[1].is_nan());
        assert_eq!(back.data[2], f32::INFINITY);
        assert_eq!(back.data[3], f32::NEG_INFINITY);
    }

    #[test]
    fn literal_and_generator_forms_parse() {
        let lit: TensorInput =
            serde_json::from_value(json!({"shape":[2,2],"data":[1,2,3,4]})).unwrap();
        assert_eq!(
            lit,
            TensorInput::Literal(Tensor {
                shape: vec![2, 2],
                data: vec![1., 2., 3., 4.]
            })
        );
        let gen: TensorInput =
            serde_json::from_value(json!({"fill":"random","shape":[256,256],"seed":7})).unwrap();
        assert_eq!(
            gen,
            TensorInput::Generated {
                fill: Fill::Random,
                shape: vec![256, 256],
                seed: Some(7)
            }
        );
        assert_eq!(
            serde_json::to_value(&gen).unwrap(),
            json!({"fill":"random","shape":[256,256],"seed":7})
        );
    }

    #[test]
    fn bad_tensors_explain_themselves() {
        let err = |v| {
            serde_json::from_value::<TensorInput>(v)
                .unwrap_err()
                .to_string()
        };
        assert!(err(json!({"shape":[2,2],"data":[1,2,3]})).contains("data has 3 values"));
        assert!(err(json!({"shape":[1,1,1,1,1],"fill":"ones"})).contains("at most 4"));
        assert!(err(json!({"shape":[3],"fill":"eye"})).contains("at least 2 dimensions"));
        assert!(err(json!({"shape":[2]})).contains("needs \"data\""));
        assert!(err(json!({"shape":[1],"data":["nan"]})).contains("a number"));
        assert!(err(json!({"shape":[1],"data":[1e300]})).contains("out of range"));
    }
}
