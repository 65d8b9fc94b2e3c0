//! `horizon bench`: accuracy and speed of the engine on a long-format CSV
//! (the arguments and the work live in the `bench` crate).

pub use bench::Args as BenchArgs;

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    bench::run_cli(&args)?;
    Ok(())
}
