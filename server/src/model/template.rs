//! The model's own chat template: the Jinja text in the GGUF's `tokenizer.chat_template`,
//! rendered with minijinja (plus Python-style string methods, which many templates use) with
//! `messages`, `add_generation_prompt`, `bos_token` and `eos_token`. A model without a template
//! gets plain ChatML.
//!
//! Concurrency: immutable after construction; rendering allocates its own output.

use app::chat::ChatTurn;
use minijinja::{context, Environment};

/// Plain ChatML, for models that ship no template.
pub const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// A compiled chat template.
pub struct ChatTemplate {
    /// The environment holding the one template.
    env: Environment<'static>,
    /// Passed to the template as `bos_token`.
    bos: String,
    /// Passed to the template as `eos_token`.
    eos: String,
}

impl ChatTemplate {
    /// Compiles `source` (or ChatML when `None`).
    pub fn new(source: Option<&str>, bos: &str, eos: &str) -> Result<ChatTemplate, String> {
        let mut env = Environment::new();
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_template_owned("chat", source.unwrap_or(CHATML).to_owned())
            .map_err(|e| format!("the model's chat template does not compile: {e}"))?;
        Ok(ChatTemplate {
            env,
            bos: bos.to_owned(),
            eos: eos.to_owned(),
        })
    }

    /// The prompt for `messages`; with `add_generation_prompt`, ready for the assistant's turn.
    pub fn render(
        &self,
        messages: &[ChatTurn],
        add_generation_prompt: bool,
    ) -> Result<String, String> {
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| format!("chat template: {e}"))?;
        template
            .render(context! {
                messages => messages
                    .iter()
                    .map(|m| {
                        std::collections::BTreeMap::from([
                            ("role", minijinja::Value::from(m.role.as_str())),
                            ("content", minijinja::Value::from(m.content.as_str())),
                        ])
                    })
                    .collect::<Vec<_>>(),
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos.as_str(),
                eos_token => self.eos.as_str(),
            })
            .map_err(|e| format!("the chat template failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::chat::Role;

    /// SmolLM2-135M-Instruct's template, as shipped in its GGUF.
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn turn(role: Role, content: &str) -> ChatTurn {
        ChatTurn {
            role,
            content: content.into(),
        }
    }

    #[test]
    fn smollm2_template_adds_its_default_system_prompt() {
        let t = ChatTemplate::new(Some(SMOLLM2), "<|im_start|>", "<|im_end|>").unwrap();
        let out = t.render(&[turn(Role::User, "Hi")], true).unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let out = t
            .render(
                &[
                    turn(Role::System, "Be brief."),
                    turn(Role::User, "Hi"),
                    turn(Role::Assistant, "Hello!"),
                ],
                false,
            )
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
        );
    }

    #[test]
    fn the_literal_above_is_the_embedded_models_template() {
        let content = crate::model::local::tests::embedded_content();
        let shipped = content.metadata["tokenizer.chat_template"]
            .to_string()
            .unwrap();
        assert_eq!(shipped, SMOLLM2);
    }

    #[test]
    fn chatml_is_the_fallback_and_python_methods_work() {
        let t = ChatTemplate::new(None, "", "").unwrap();
        assert_eq!(
            t.render(&[turn(Role::User, "x")], true).unwrap(),
            "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n"
        );
        let t = ChatTemplate::new(Some("{{ messages[0]['content'].strip() }}"), "", "").unwrap();
        assert_eq!(t.render(&[turn(Role::User, "  y ")], false).unwrap(), "y");
    }

    #[test]
    fn broken_templates_are_errors_not_panics() {
        assert!(ChatTemplate::new(Some("{% for %}"), "", "").is_err());
        let t = ChatTemplate::new(Some("{{ raise_exception('no') }}"), "", "").unwrap();
        assert!(t.render(&[], true).is_err());
    }
}
