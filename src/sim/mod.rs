//! The built-in ModelArts + IAM simulator (`simulate`): the fixture of tests, demo and benchmarks.
