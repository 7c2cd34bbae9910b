//! Embedding the scheduler: bounded fan-out of simulated LLM calls with a timeout and a
//! cancellation. Run with `cargo run -p omega-sched --example embed`.

use std::time::Duration;

use omega_sched::{Fairness, Scheduler, TaskOptions};

fn main() {
    let sched = Scheduler::builder()
        .max_concurrent_tasks(64)
        .max_concurrent_llm_calls(8)
        .fairness(Fairness::Priority)
        .build();

    let s = sched.clone();
    let answers = sched.block_on(async move {
        let calls: Vec<_> = (0..20u64)
            .map(|i| {
                let s2 = s.clone();
                s.submit(
                    async move {
                        // Every "LLM call" holds a permit of the built-in llm pool.
                        let _permit = s2.llm_pool().acquire().await?;
                        omega_sched::sleep(Duration::from_millis(20 + i)).await?;
                        Ok::<_, omega_sched::Cancelled>(format!("answer {i}"))
                    },
                    TaskOptions::new()
                        .name(format!("call-{i}"))
                        .priority(i as i32 % 3)
                        .timeout(Duration::from_secs(5)),
                )
            })
            .collect();
        // Flatten TaskHandle<Result<..>> into the values.
        let results = s.await_all(calls).await.expect("no call failed");
        results.into_iter().collect::<Result<Vec<_>, _>>()
    });

    let answers = answers.expect("no call was cancelled");
    println!("{} answers, first: {}", answers.len(), answers[0]);
    let stats = sched.stats();
    println!(
        "completed {} tasks, peak llm permits {}",
        stats.completed, stats.pools[0].peak_in_use
    );
}
