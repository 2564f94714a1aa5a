//! One operand of a calculator job: its form state ([`OperandFields`]), the editor that shows it
//! ([`OperandEditor`]: where the values come from, shape, values or seed), and the conversion to a
//! wire [`TensorInput`] ([`build_input`]), which reports bad input as a sentence instead.

use crate::pages::parse::{parse_seed, parse_shape, parse_values};
use crate::tensor::{element_count, Fill, Tensor, TensorInput};
use leptos::prelude::*;

/// Where an operand's values come from: typed in, or one of the generators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The values typed into the textarea.
    Values,
    /// A generator filled on the device.
    Fill(Fill),
}

impl Source {
    /// In the order the picker lists them.
    pub const ALL: [Source; 5] = [
        Source::Values,
        Source::Fill(Fill::Zeros),
        Source::Fill(Fill::Ones),
        Source::Fill(Fill::Eye),
        Source::Fill(Fill::Random),
    ];

    /// The `<option>` value.
    pub fn key(self) -> &'static str {
        match self {
            Source::Values => "values",
            Source::Fill(Fill::Zeros) => "zeros",
            Source::Fill(Fill::Ones) => "ones",
            Source::Fill(Fill::Eye) => "eye",
            Source::Fill(Fill::Random) => "random",
        }
    }

    /// The label people see.
    pub fn label(self) -> &'static str {
        match self {
            Source::Values => "Custom values",
            Source::Fill(Fill::Zeros) => "Zeros",
            Source::Fill(Fill::Ones) => "Ones",
            Source::Fill(Fill::Eye) => "Identity (eye)",
            Source::Fill(Fill::Random) => "Random (seeded)",
        }
    }

    /// The source with this `<option>` value.
    pub fn from_key(key: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.key() == key)
    }
}

/// The form fields of one operand, as signals (cheap to copy into handlers).
#[derive(Clone, Copy, Debug)]
pub struct OperandFields {
    /// Typed values or a generator.
    pub source: RwSignal<Source>,
    /// Shape text, e.g. `2,2`.
    pub shape: RwSignal<String>,
    /// Values text (used when `source` is [`Source::Values`]).
    pub values: RwSignal<String>,
    /// Seed text (used by [`Fill::Random`]).
    pub seed: RwSignal<String>,
}

impl OperandFields {
    /// Typed values `values` of shape `shape`.
    pub fn new(shape: &str, values: &str) -> Self {
        OperandFields {
            source: RwSignal::new(Source::Values),
            shape: RwSignal::new(shape.into()),
            values: RwSignal::new(values.into()),
            seed: RwSignal::new("0".into()),
        }
    }

    /// The operand as sent, or what to fix. Reads the fields without tracking them.
    pub fn to_input(&self) -> Result<TensorInput, String> {
        self.values.with_untracked(|values| {
            build_input(
                self.source.get_untracked(),
                &self.shape.read_untracked(),
                values,
                &self.seed.read_untracked(),
            )
        })
    }
}

/// The operand described by the form's texts.
pub fn build_input(
    source: Source,
    shape: &str,
    values: &str,
    seed: &str,
) -> Result<TensorInput, String> {
    let shape = parse_shape(shape)?;
    match source {
        Source::Values => {
            let data = parse_values(values)?;
            let needed = element_count(&shape);
            if data.len() != needed {
                return Err(format!(
                    "values: {} given, but shape [{}] holds {needed}",
                    data.len(),
                    shape
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            Tensor::new(shape, data).map(TensorInput::Literal)
        }
        Source::Fill(fill) => {
            if fill == Fill::Eye && shape.len() < 2 {
                return Err("shape: the identity needs at least 2 dimensions (e.g. 3,3)".into());
            }
            let seed = if fill == Fill::Random {
                parse_seed(seed)?
            } else {
                None
            };
            Ok(TensorInput::Generated { fill, shape, seed })
        }
    }
}

/// The editor for operand `name` (`a` or `b`); control ids are prefixed with `operand-{name}-`.
#[component]
pub fn OperandEditor(
    /// `a` or `b`.
    name: &'static str,
    /// The fields it edits.
    fields: OperandFields,
    /// Whether the last submit attempt found a problem in this operand.
    #[prop(into)]
    invalid: Signal<bool>,
) -> impl IntoView {
    let id = move |part: &str| format!("operand-{name}-{part}");
    let OperandFields {
        source,
        shape,
        values,
        seed,
    } = fields;
    let is_values = move || source.get() == Source::Values;
    let is_random = move || source.get() == Source::Fill(Fill::Random);
    let aria_invalid = move || invalid.get().then_some("true");

    view! {
        <fieldset class="operand" data-testid=format!("operand-{name}")>
            <legend>"Operand " <code>{name}</code></legend>
            <div class="field-row">
                <div class="field">
                    <label for=id("source")>"Values from"</label>
                    <select
                        id=id("source")
                        data-testid=format!("{name}-source")
                        on:change=move |ev| {
                            if let Some(s) = Source::from_key(&event_target_value(&ev)) {
                                source.set(s);
                            }
                        }
                    >
                        {Source::ALL
                            .into_iter()
                            .map(|s| {
                                view! {
                                    <option value=s.key() selected=move || source.get() == s>
                                        {s.label()}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for=id("shape")>"Shape"</label>
                    <input
                        id=id("shape")
                        type="text"
                        class="mono"
                        data-testid=format!("{name}-shape")
                        autocomplete="off"
                        spellcheck="false"
                        aria-describedby=id("shape-hint")
                        aria-invalid=aria_invalid
                        value=shape.get_untracked()
                        prop:value=move || shape.get()
                        on:input=move |ev| shape.set(event_target_value(&ev))
                    />
                    <small class="hint" id=id("shape-hint")>"e.g. 2,3 · empty for a scalar"</small>
                </div>
                <Show when=is_random>
                    <div class="field field-narrow">
                        <label for=id("seed")>"Seed"</label>
                        <input
                            id=id("seed")
                            type="number"
                            min="0"
                            step="1"
                            inputmode="numeric"
                            data-testid=format!("{name}-seed")
                            value=seed.get_untracked()
                            prop:value=move || seed.get()
                            on:input=move |ev| seed.set(event_target_value(&ev))
                        />
                    </div>
                </Show>
            </div>
            <Show
                when=is_values
                fallback=move || {
                    view! {
                        <p class="hint generated">"Filled on the device from the shape; no values to type."</p>
                    }
                }
            >
                <div class="field">
                    <label for=id("values")>"Values (row-major)"</label>
                    <textarea
                        id=id("values")
                        class="mono"
                        rows="4"
                        spellcheck="false"
                        data-testid=format!("{name}-values")
                        aria-describedby=id("values-hint")
                        aria-invalid=aria_invalid
                        prop:value=move || values.get()
                        on:input=move |ev| values.set(event_target_value(&ev))
                    >
                        {values.get_untracked()}
                    </textarea>
                    <small class="hint" id=id("values-hint")>
                        "Numbers separated by spaces, commas or new lines; NaN and Infinity allowed."
                    </small>
                </div>
            </Show>
        </fieldset>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_become_a_literal() {
        let t = build_input(Source::Values, "2,2", "1 2\n3 4", "").unwrap();
        assert_eq!(
            t,
            TensorInput::Literal(Tensor {
                shape: vec![2, 2],
                data: vec![1., 2., 3., 4.]
            })
        );
        let scalar = build_input(Source::Values, "", "5", "").unwrap();
        assert_eq!(scalar.shape(), &[] as &[usize]);
    }

    #[test]
    fn generators_carry_their_seed_only_when_random() {
        let r = build_input(Source::Fill(Fill::Random), "3,3", "ignored", "7").unwrap();
        assert_eq!(
            r,
            TensorInput::Generated {
                fill: Fill::Random,
                shape: vec![3, 3],
                seed: Some(7)
            }
        );
        let z = build_input(Source::Fill(Fill::Zeros), "4", "", "7").unwrap();
        assert_eq!(
            z,
            TensorInput::Generated {
                fill: Fill::Zeros,
                shape: vec![4],
                seed: None
            }
        );
    }

    #[test]
    fn mistakes_are_reported_not_sent() {
        assert!(build_input(Source::Values, "2,2", "1 2 3", "")
            .unwrap_err()
            .contains("3 given"));
        assert!(build_input(Source::Values, "2,a", "1", "")
            .unwrap_err()
            .starts_with("shape:"));
        assert!(build_input(Source::Fill(Fill::Eye), "3", "", "")
            .unwrap_err()
            .contains("2 dimensions"));
        assert!(build_input(Source::Fill(Fill::Random), "3", "", "x")
            .unwrap_err()
            .starts_with("seed:"));
        assert!(Source::ALL
            .iter()
            .all(|s| Source::from_key(s.key()) == Some(*s)));
    }
}
