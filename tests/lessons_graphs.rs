//! The claims of lessons 09-11 (computation graphs, dynamic versus static graphs, image
//! classification), checked on each lesson's quick setting.

#[allow(dead_code)]
#[path = "../examples/09-computation-graph.rs"]
mod lesson09;

fn starts_with_digraph(path: &std::path::Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|s| s.starts_with("digraph"))
}

#[test]
fn lesson09_batch_changes_only_shapes_and_grad_w_is_error_times_input() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = lesson09::Config {
        out: dir.path().to_path_buf(),
        ..lesson09::Config::quick()
    };
    let o = lesson09::run(&cfg).unwrap();
    assert!(o.same_structure(), "{:?}\n{:?}", o.one, o.batch);
    assert_eq!(o.one.optimized.len(), o.batch.optimized.len());
    assert_eq!(o.grad_w.len(), 2);
    for (g, e) in o.grad_w.iter().zip(&o.expected_grad_w) {
        assert!(
            (g - e).abs() < 1e-12,
            "{:?} vs {:?}",
            o.grad_w,
            o.expected_grad_w
        );
    }
    // Every node of the one-sample graph that depends on w or b has a gradient.
    assert!(
        o.nodes
            .iter()
            .filter(|n| n.name == "sigmoid")
            .all(|n| n.grad.is_some())
    );
    assert_eq!(o.dot_files.len(), 4);
    assert!(o.dot_files.iter().all(|p| starts_with_digraph(p)));
    assert!(o.figure.exists());
}

#[allow(dead_code)]
#[path = "../examples/10-dynamic-vs-static.rs"]
mod lesson10;

#[test]
fn lesson10_static_matches_eager_with_fewer_allocations_and_refuses_data_dependence() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = lesson10::Config {
        out: dir.path().to_path_buf(),
        ..lesson10::Config::quick()
    };
    let o = lesson10::run(&cfg).unwrap();
    assert_eq!(o.eager.losses.len(), cfg.steps);
    assert_eq!(o.compiled.losses.len(), cfg.steps);
    assert!(
        o.max_loss_relative_difference() <= 1e-6,
        "eager {:?} static {:?}",
        o.eager.losses,
        o.compiled.losses
    );
    // Training did something, in both modes alike.
    // (over the 8 batches the steps cycle through)
    let (first, last) = (
        lesson10::mean_of(&o.eager.losses, 8, false),
        lesson10::mean_of(&o.eager.losses, 8, true),
    );
    assert!(last < first, "mean loss {first} -> {last}");
    assert!(
        o.compiled.step.allocations < o.eager.step.allocations,
        "static {} vs eager {}",
        o.compiled.step.allocations,
        o.eager.step.allocations
    );
    // The whole step is one graph: it writes the weights and momentum buffers, in place.
    assert!(o.stores > 0, "no stores in the compiled step");
    assert!(o.memory.in_place > 0, "{:?}", o.memory);
    assert!(o.store_example.contains(" <- %"), "{:?}", o.store_example);
    assert!(o.memory.buffers > 0 && o.memory.bytes <= o.memory.bytes_without_reuse);
    assert!(o.eager_loop_iterations > 0 && o.eager_loop_norm <= 1.0);
    assert!(
        o.trace_error.contains("eager mode"),
        "tracing the data-dependent loop gave {:?}",
        o.trace_error
    );
    assert!(o.figure.exists());
}

#[allow(dead_code)]
#[path = "../examples/11-image-classification.rs"]
mod lesson11;

#[test]
fn lesson11_digits_reach_90_percent_and_the_checkpoint_reloads_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = lesson11::Config {
        out: dir.path().to_path_buf(),
        ..lesson11::Config::quick()
    };
    let o = lesson11::run(&cfg).unwrap();
    assert!(o.test_accuracy >= 0.90, "test accuracy {}", o.test_accuracy);
    assert!(o.reload_identical);
    let total: usize = o.confusion.iter().flatten().sum();
    assert_eq!(total, o.sizes.1);
    assert!(
        o.mistakes
            .windows(2)
            .all(|w| w[0].confidence >= w[1].confidence)
    );
    assert!(o.checkpoint.exists());
    assert!(o.figure.exists());
}
