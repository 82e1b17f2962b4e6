mod runtime;
fn main(){}
