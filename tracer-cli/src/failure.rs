//! The one error type of the binary: a message already worded as dtrace(1) words it, and the
//! exit status (1 for a failure, 2 for a usage error).

/// A failure already worded for the user (without the `tracer: ` prefix).
pub struct Failure {
    pub message: String,
    pub status: i32,
}

/// Drop Rust's " (os error N)" from a system error's text: dtrace(1) prints strerror alone.
fn plain(message: String) -> String {
    match message.find(" (os error ") {
        Some(i) => {
            let end = message[i..]
                .find(')')
                .map(|j| i + j + 1)
                .unwrap_or(message.len());
            format!("{}{}", &message[..i], &message[end..])
        }
        None => message,
    }
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: plain(message.into()),
            status: 1,
        }
    }
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            status: 2,
        }
    }
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::new(e.to_string())
    }
}
