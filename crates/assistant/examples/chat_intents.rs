//! Prints what the shipped n-gram model understands of a few chat messages (a development aid).
use tailor_assistant::understanding::{shipped_examples, UnderstandingConfig, UnderstandingModel};
use tailor_assistant::Understanding;

fn main() {
    let t = std::time::Instant::now();
    let model = UnderstandingModel::train(&shipped_examples(), None, &UnderstandingConfig::default()).expect("train");
    eprintln!("trained in {:?}", t.elapsed());
    let u = Understanding::new(model, None);
    for m in std::env::args().skip(1) {
        let x = u.understand(&m);
        println!(
            "{m:?} -> {:?} {:.2} oos={} {:?}",
            x.intent,
            x.confidence,
            x.out_of_scope,
            x.entities.iter().map(|e| (&e.entity, &e.canonical)).collect::<Vec<_>>()
        );
    }
}
