//! Language models on the shared device. So far: the [`manager`] that loads each configured model
//! once, shares it, and unloads it after its keep-alive. Generation and the chat backends build
//! on it (issue: chat).

pub mod manager;
