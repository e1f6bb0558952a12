//! A real RabbitMQ (Debian's rabbitmq-server) for the tests: its own node, ports, data and
//! logs in a scratch directory, loopback only, started without systemd and stopped on drop.
//! And a pika consumer (Python, as fedora-messaging consumes) to read what was published.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Broker {
    /// The launcher of each start, reaped when the node stops.
    launched: std::sync::Mutex<Vec<std::process::Child>>,
    pub dir: PathBuf,
    pub port: u16,
    dist_port: u16,
    node: String,
}

use super::free_port;

impl Broker {
    pub fn start(dir: &Path) -> Broker {
        let server = Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
        assert!(
            server.exists(),
            "rabbitmq-server is not installed: run ./setup.sh --deps-only (apt-get install -y rabbitmq-server)"
        );
        let b = Broker {
            launched: std::sync::Mutex::new(Vec::new()),
            dir: dir.to_path_buf(),
            port: free_port(),
            dist_port: free_port(),
            node: format!("fci{}@localhost", std::process::id()),
        };
        b.launch();
        b
    }

    fn env(&self, c: &mut Command) {
        let d = &self.dir;
        c.env("HOME", d.join("home"))
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq"))
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            );
    }

    /// Starts the node (again, on the same data) and waits until it takes connections.
    pub fn launch(&self) {
        let d = &self.dir;
        std::fs::create_dir_all(d.join("home")).unwrap();
        std::fs::create_dir_all(d.join("log")).unwrap();
        std::fs::write(d.join("enabled_plugins"), "[].\n").unwrap();
        std::fs::write(d.join("rabbitmq.conf"), "").unwrap();
        let mut c = Command::new("setsid");
        c.arg("/usr/lib/rabbitmq/bin/rabbitmq-server")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(d.join("log/stdout.log")).unwrap())
            .stderr(Stdio::null());
        self.env(&mut c);
        self.launched.lock().unwrap().push(c.spawn().unwrap());
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "RabbitMQ did not start; see {}",
                d.join("log").display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("mnesia").join(format!("{}.pid", self.node)))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Stops the node and waits until its port is closed.
    pub fn stop(&self) {
        if let Some(pid) = self.pid() {
            // SAFETY: signalling a process id the broker wrote for itself.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let start = Instant::now();
            while unsafe { libc::kill(pid, 0) } == 0 && start.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        for mut c in self.launched.lock().unwrap().drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        // The node started Erlang's port mapper; it refuses to stop while another node uses it.
        let _ = Command::new("epmd")
            .arg("-kill")
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A Python with pika: the tmt venv's (setup.sh installs it there), or the system's.
pub fn python() -> PathBuf {
    let venv = std::env::var("FCI_TMT_VENV").unwrap_or_else(|_| "/opt/fci/tmt".into());
    for p in [
        Path::new(&venv).join("bin/python"),
        PathBuf::from("python3"),
    ] {
        let ok = Command::new(&p)
            .args(["-c", "import pika"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return p;
        }
    }
    panic!("no Python with pika: run ./setup.sh --deps-only (it installs pika into the tmt venv)");
}

const CONSUMER: &str = r##"
import json, sys, pika
url, queue, mode = sys.argv[1], sys.argv[2], sys.argv[3]
conn = pika.BlockingConnection(pika.URLParameters(url))
ch = conn.channel()
if mode == "declare":
    ch.queue_declare(queue=queue, durable=True)
    ch.queue_bind(queue=queue, exchange="amq.topic", routing_key="#")
else:
    while True:
        method, props, body = ch.basic_get(queue=queue, auto_ack=True)
        if method is None:
            break
        print(json.dumps({
            "routing_key": method.routing_key,
            "content_type": props.content_type,
            "content_encoding": props.content_encoding,
            "delivery_mode": props.delivery_mode,
            "message_id": props.message_id,
            "headers": props.headers,
            "body": json.loads(body),
        }))
conn.close()
"##;

/// Declares a durable queue bound to `amq.topic` for every topic.
pub fn declare(broker: &Broker, queue: &str) {
    let st = Command::new(python())
        .args(["-c", CONSUMER, &broker.url(), queue, "declare"])
        .status()
        .unwrap();
    assert!(
        st.success(),
        "the pika consumer could not declare its queue"
    );
}

/// Every message waiting in the queue, as the pika consumer saw it.
pub fn drain(broker: &Broker, queue: &str) -> Vec<serde_json::Value> {
    let out = Command::new(python())
        .args(["-c", CONSUMER, &broker.url(), queue, "drain"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the pika consumer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Publishes dist-git push messages with fedora-messaging, as Fedora's dist-git hook does
/// (`tests/fixtures/watch/publish.py`): a list of CommitV1 bodies, or `{"topic", "raw"}`.
pub fn publish_git_receive(broker: &Broker, messages: &serde_json::Value) {
    let file = broker
        .dir
        .join(format!("messages-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, messages.to_string()).unwrap();
    let script = super::fixture("watch/publish.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(broker.url())
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fedora-messaging could not publish (run ./setup.sh --deps-only to install it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
