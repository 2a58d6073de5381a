//! Developer tool: inspect a capture into a folder of PNGs.
use openpalm_engine::{decode, Engine, InputKind};
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let input: InputKind = a[3].parse().unwrap();
    let e = Engine::default();
    let cap = decode(&std::fs::read(&a[1]).unwrap()).unwrap();
    let ins = e.inspect(&cap, input);
    std::fs::create_dir_all(&a[2]).unwrap();
    for p in &ins.pictures {
        p.image.save(format!("{}/{}.png", a[2], p.name)).unwrap();
    }
    if let Some(h) = &ins.trace.hand {
        println!("{:?} valleys {:?}", h.handedness, h.valleys);
    }
    println!("{:?}", ins.outcome.map(|x| x.quality.score));
}
