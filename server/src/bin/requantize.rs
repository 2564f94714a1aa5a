//! `turnstile-requantize IN.gguf OUT.gguf`: rewrites a GGUF model's Q4_1/Q5_x tensors as Q8_0,
//! which candle runs with SIMD kernels. Used once by the setup step for the embedded model.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: turnstile-requantize IN.gguf OUT.gguf");
        return ExitCode::from(2);
    };
    match turnstile_server::model::quantize::requantize(
        input,
        output,
        candle_core::quantized::GgmlDType::Q8_0,
    ) {
        Ok(report) => {
            eprintln!(
                "wrote {}: {} tensors converted to Q8_0, {} kept",
                output.display(),
                report.converted,
                report.kept
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("turnstile-requantize: {e}");
            ExitCode::FAILURE
        }
    }
}
