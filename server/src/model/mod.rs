//! Language models on the shared device. So far: the [`manager`] that loads each configured model
//! once, shares it, and unloads it after its keep-alive, and [`quantize`], the one-off rewrite of
//! slow Q4_1 weights as Q8_0. Generation and the chat backends build on these (issue: chat).

pub mod manager;
pub mod quantize;
