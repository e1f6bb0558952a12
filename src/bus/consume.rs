//! Dist-git push messages from a broker: a durable queue bound to `amq.topic` for
//! `#.git.receive` (Fedora's `org.fedoraproject.prod.git.receive`, or a plain `git.receive`).
//! A message is acknowledged only after its manifest is out and the watch state written, so a
//! crash re-delivers it; a malformed one is acknowledged (a redelivery cannot mend it) and
//! reported. Messages are pulled one at a time (`basic.get`), which keeps each one's handling
//! synchronous and makes `--once` mean "what is queued now".

use crate::error::FciError;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use std::time::Duration;

/// What the broker said of a message beside its body: its routing key (the topic) and the
/// AMQP `message_id` property, where fedora-messaging puts the message's id.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Envelope {
    pub routing_key: Option<String>,
    pub message_id: Option<String>,
}

/// What the consumer hands over: a message, or a moment with nothing queued (when kept
/// messages are tried again).
pub enum Event<'a> {
    Message(&'a [u8], Envelope),
    Idle,
}

/// What the handler made of a message.
pub enum Handled {
    /// Done (emitted, or ignored): acknowledge it.
    Done,
    /// Malformed: acknowledge it, it was reported.
    Rejected,
}

pub struct Consumer {
    rt: tokio::runtime::Runtime,
    conn: Connection,
    ch: Channel,
    queue: String,
    shown: String,
    url: String,
}

const DEADLINE: Duration = Duration::from_secs(30);

impl Consumer {
    pub fn connect(url: &str, queue: &str) -> Result<Consumer, FciError> {
        let shown = crate::redact::strip_credentials(url);
        let scrub = |e: &dyn std::fmt::Display| infra(&shown, url, e);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| scrub(&e))?;
        let (conn, ch) = rt
            .block_on(async {
                tokio::time::timeout(DEADLINE, async {
                    let conn = Connection::connect(url, ConnectionProperties::default()).await?;
                    let ch = conn.create_channel().await?;
                    ch.queue_declare(
                        queue.into(),
                        QueueDeclareOptions {
                            durable: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await?;
                    ch.queue_bind(
                        queue.into(),
                        "amq.topic".into(),
                        "#.git.receive".into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
                    Ok::<_, lapin::Error>((conn, ch))
                })
                .await
            })
            .map_err(|_| {
                FciError::Infra(format!("{shown}: no answer within {}s", DEADLINE.as_secs()))
            })?
            .map_err(|e| scrub(&e))?;
        Ok(Consumer {
            rt,
            conn,
            ch,
            queue: queue.to_string(),
            shown,
            url: url.to_string(),
        })
    }

    fn infra(&self, e: &dyn std::fmt::Display) -> FciError {
        infra(&self.shown, &self.url, e)
    }

    /// Hands each queued message to `handle`; with `once`, stops when the queue is empty,
    /// else waits for more. A handler error leaves its message queued (nack, requeue) and
    /// ends the run.
    pub fn run(
        self,
        once: bool,
        idle_every: Duration,
        mut handle: impl FnMut(Event) -> anyhow::Result<Handled>,
    ) -> anyhow::Result<usize> {
        let mut count = 0;
        let mut idle_since = std::time::Instant::now();
        let result: anyhow::Result<usize> = loop {
            let got = self.rt.block_on(async {
                tokio::time::timeout(
                    DEADLINE,
                    self.ch.basic_get(
                        self.queue.as_str().into(),
                        BasicGetOptions { no_ack: false },
                    ),
                )
                .await
            });
            let msg = match got {
                Err(_) => break Err(self.infra(&"the broker stalled").into()),
                Ok(Err(e)) => break Err(self.infra(&e).into()),
                Ok(Ok(None)) if once => break Ok(count),
                Ok(Ok(None)) => {
                    if idle_since.elapsed() >= idle_every {
                        idle_since = std::time::Instant::now();
                        if let Err(e) = handle(Event::Idle) {
                            break Err(e);
                        }
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
                Ok(Ok(Some(m))) => m,
            };
            let d = msg.delivery;
            count += 1;
            let env = Envelope {
                routing_key: Some(d.routing_key.to_string()),
                message_id: d.properties.message_id().as_ref().map(|m| m.to_string()),
            };
            match handle(Event::Message(&d.data, env)) {
                Ok(_) => {
                    if let Err(e) = self.rt.block_on(d.ack(BasicAckOptions::default())) {
                        break Err(self.infra(&e).into());
                    }
                }
                Err(e) => {
                    let _ = self.rt.block_on(d.nack(BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    }));
                    break Err(e);
                }
            }
        };
        let _ = self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(2), self.conn.close(200, "done".into())).await
        });
        result
    }
}

/// An infrastructure error about the broker, named without credentials.
fn infra(shown: &str, url: &str, e: &dyn std::fmt::Display) -> FciError {
    let said = crate::redact::scrub_credentials(&e.to_string(), url);
    FciError::Infra(format!("{shown}: {said}"))
}
