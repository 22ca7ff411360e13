//! Model-based test: random sequences of hub operations (publish with or
//! without a caller id, subscribe with a filter and a resume point, drain,
//! reset) checked against a plain `Vec` model of what every subscriber must
//! receive: exactly the retained, matching events after its resume point, or
//! `Gone`/`Lagged` exactly when the model says its position was overwritten.

use std::sync::Arc;

use proptest::prelude::*;
use ssehub::clock::ManualClock;
use ssehub::{
    Delivery, EndReason, Event, GoneReason, Hub, HubConfig, SubscribeError, SubscribeOptions,
};

const CAPACITY: usize = 8;
const TYPES: [&str; 3] = ["a", "b", "c"];

#[derive(Debug, Clone)]
enum Op {
    Publish {
        kind: usize,
        custom_id: bool,
    },
    Subscribe {
        filter: Option<usize>,
        resume: ResumeChoice,
    },
    Drain {
        which: usize,
    },
    Reset,
    Tick,
}

#[derive(Debug, Clone)]
enum ResumeChoice {
    Live,
    /// After the `n`-th id ever returned by a publish (any generation).
    AfterId(usize),
    /// At the timestamp of the `n`-th publish ever (any generation), plus a
    /// small offset.
    FromTimestamp(usize, u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..TYPES.len(), any::<bool>()).prop_map(|(kind, custom_id)| Op::Publish { kind, custom_id }),
        2 => (proptest::option::of(0..TYPES.len()), resume()).prop_map(|(filter, resume)| Op::Subscribe { filter, resume }),
        3 => (0..8usize).prop_map(|which| Op::Drain { which }),
        1 => Just(Op::Reset),
        1 => Just(Op::Tick),
    ]
}

fn resume() -> impl Strategy<Value = ResumeChoice> {
    prop_oneof![
        Just(ResumeChoice::Live),
        (0..40usize).prop_map(ResumeChoice::AfterId),
        (0..40usize, 0..3u64).prop_map(|(n, offset)| ResumeChoice::FromTimestamp(n, offset)),
    ]
}

/// One published event as the model sees it.
#[derive(Debug, Clone)]
struct ModelEvent {
    generation: usize,
    /// Position within its generation.
    seq: usize,
    kind: usize,
    id: String,
    data: String,
    timestamp: u64,
}

/// One open subscription: the real one and the model's view of it.
struct Sub {
    real: ssehub::Subscription,
    generation: usize,
    /// Next position (within `generation`) the model expects.
    cursor: usize,
    filter: Option<usize>,
    ended: bool,
}

struct Model {
    /// Every event ever published, all generations.
    events: Vec<ModelEvent>,
    generation: usize,
    /// Events in the current generation.
    published_in_generation: usize,
}

impl Model {
    fn generation_events(&self, generation: usize) -> Vec<&ModelEvent> {
        self.events
            .iter()
            .filter(|e| e.generation == generation)
            .collect()
    }

    /// Oldest retained position of `generation` (frozen once it is not current).
    fn tail(&self, generation: usize) -> usize {
        self.generation_events(generation)
            .len()
            .saturating_sub(CAPACITY)
    }
}

fn data_of(frame: &[u8]) -> String {
    let text = std::str::from_utf8(frame).expect("utf-8 frame");
    text.lines()
        .find_map(|line| line.strip_prefix("data: "))
        .expect("data line")
        .to_owned()
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let clock = ManualClock::new(1_000_000);
    let hub = Hub::with_config(
        HubConfig::default()
            .capacity(CAPACITY)
            .keep_alive(None)
            .clock(Arc::new(clock.clone())),
    );
    let mut model = Model {
        events: Vec::new(),
        generation: 0,
        published_in_generation: 0,
    };
    let mut subs: Vec<Sub> = Vec::new();
    for op in ops {
        match op {
            Op::Tick => clock.advance(std::time::Duration::from_nanos(10)),
            Op::Publish { kind, custom_id } => {
                let n = model.events.len();
                let data = format!("e{n}");
                let mut event = Event::new(TYPES[kind], data.clone());
                if custom_id {
                    event = event.with_id(format!("custom-{n}"));
                }
                let published = hub.publish(event).expect("publish");
                let id = if custom_id {
                    format!("custom-{n}")
                } else {
                    published.auto_id()
                };
                prop_assert_eq!(published.seq as usize, model.published_in_generation);
                model.events.push(ModelEvent {
                    generation: model.generation,
                    seq: model.published_in_generation,
                    kind,
                    id,
                    data,
                    timestamp: clock_now(&clock),
                });
                model.published_in_generation += 1;
            }
            Op::Reset => {
                hub.reset();
                model.generation += 1;
                model.published_in_generation = 0;
            }
            Op::Subscribe { filter, resume } => {
                let mut options = SubscribeOptions::live();
                if let Some(kind) = filter {
                    options = options.types([TYPES[kind]]);
                }
                let current = model.generation;
                let head = model.published_in_generation;
                let tail = model.tail(current);
                let expected: Result<usize, GoneReason> = match resume {
                    ResumeChoice::Live => Ok(head),
                    ResumeChoice::AfterId(n) => {
                        let Some(event) = model.events.get(n) else {
                            continue;
                        };
                        options = options.after_id(event.id.clone());
                        let custom = event.id.starts_with("custom-");
                        if event.generation != current {
                            Err(if custom {
                                GoneReason::UnknownId
                            } else {
                                GoneReason::OtherGeneration
                            })
                        } else if event.seq + 1 < tail {
                            Err(if custom {
                                GoneReason::UnknownId
                            } else {
                                GoneReason::Overwritten {
                                    missed: (tail - event.seq - 1) as u64,
                                }
                            })
                        } else if custom && event.seq < tail {
                            // The custom id's own event is gone: unknown.
                            Err(GoneReason::UnknownId)
                        } else {
                            Ok(event.seq + 1)
                        }
                    }
                    ResumeChoice::FromTimestamp(n, offset) => {
                        let Some(event) = model.events.get(n) else {
                            continue;
                        };
                        let at = event.timestamp + offset;
                        options = options.from_timestamp(at);
                        let generation = model.generation_events(current);
                        let overwritten = generation[..tail].iter().any(|e| e.timestamp >= at);
                        if overwritten {
                            Err(GoneReason::TimestampOverwritten)
                        } else {
                            Ok(generation[tail..]
                                .iter()
                                .find(|e| e.timestamp >= at)
                                .map_or(head, |e| e.seq))
                        }
                    }
                };
                match (hub.subscribe(options), expected) {
                    (Ok(real), Ok(cursor)) => {
                        prop_assert_eq!(real.cursor() as usize, cursor);
                        subs.push(Sub {
                            real,
                            generation: current,
                            cursor,
                            filter,
                            ended: false,
                        });
                    }
                    (Err(SubscribeError::Gone(got)), Err(want)) => prop_assert_eq!(got, want),
                    (got, want) => {
                        return Err(TestCaseError::fail(format!(
                            "subscribe: got {got:?}, model says {want:?}"
                        )))
                    }
                }
            }
            Op::Drain { which } => {
                let Some(sub) = subs.get_mut(which) else {
                    continue;
                };
                if sub.ended {
                    continue;
                }
                let events = model.generation_events(sub.generation);
                let tail = model.tail(sub.generation);
                let closed = sub.generation != model.generation;
                let mut got = Vec::new();
                let mut end = None;
                while let Some(delivery) = sub.real.try_recv() {
                    match delivery {
                        Delivery::Batch(batch) => got.extend(batch.frames().map(data_of)),
                        Delivery::KeepAlive => {}
                        Delivery::End(reason) => {
                            end = Some(reason);
                            break;
                        }
                    }
                }
                if sub.cursor < tail {
                    prop_assert_eq!(got, Vec::<String>::new());
                    prop_assert_eq!(
                        end,
                        Some(EndReason::Lagged {
                            missed: (tail - sub.cursor) as u64
                        })
                    );
                    sub.ended = true;
                    continue;
                }
                let want: Vec<String> = events[sub.cursor..]
                    .iter()
                    .filter(|e| sub.filter.is_none_or(|kind| e.kind == kind))
                    .map(|e| e.data.clone())
                    .collect();
                prop_assert_eq!(got, want);
                sub.cursor = events.len();
                if closed {
                    prop_assert_eq!(end, Some(EndReason::Reset));
                    sub.ended = true;
                } else {
                    prop_assert_eq!(end, None);
                }
            }
        }
    }
    let stats = hub.stats();
    prop_assert_eq!(stats.published as usize, model.published_in_generation);
    prop_assert_eq!(
        stats.ring.len as usize,
        model.published_in_generation.min(CAPACITY)
    );
    Ok(())
}

fn clock_now(clock: &ManualClock) -> u64 {
    use ssehub::clock::Clock;
    clock.now_unix_nanos()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn hub_matches_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(ops)?;
    }
}
