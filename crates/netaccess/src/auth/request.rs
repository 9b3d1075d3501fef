//! [`AuthenticationRequest`]: what the `authentication_required` signal carries. A slot answers
//! at once ([`answer`](AuthenticationRequest::answer)), or later from any task after
//! [`answer_later`](AuthenticationRequest::answer_later) — the request waits without blocking a
//! thread, which Qt's synchronous slot cannot do.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::Authenticator;

#[derive(Debug, Clone)]
enum Answer {
    Pending,
    Deferred,
    Given(Authenticator),
    Refused,
}

#[derive(Debug)]
struct Inner {
    asked: Authenticator,
    answer: Mutex<Answer>,
    notify: Notify,
}

/// A server or proxy asks for credentials (Qt's `QAuthenticator*` argument of
/// `authenticationRequired`). Cheap to clone; every clone answers the same request.
///
/// ```
/// # fn slot(request: &netaccess::AuthenticationRequest) {
/// // Answer at once:
/// request.answer("user", "secret");
/// // Or later, from another task (a password dialog, a keyring lookup):
/// request.answer_later();
/// let later = request.clone();
/// std::thread::spawn(move || later.answer("user", "secret"));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AuthenticationRequest {
    inner: Arc<Inner>,
}

impl AuthenticationRequest {
    pub(crate) fn new(asked: Authenticator) -> Self {
        AuthenticationRequest {
            inner: Arc::new(Inner {
                asked,
                answer: Mutex::new(Answer::Pending),
                notify: Notify::new(),
            }),
        }
    }

    fn set(&self, answer: Answer) {
        *self.inner.answer.lock().unwrap_or_else(|e| e.into_inner()) = answer;
        self.inner.notify.notify_one();
    }

    /// What is asked: the realm and the challenge's options (Qt's incoming `QAuthenticator`).
    pub fn authenticator(&self) -> &Authenticator {
        &self.inner.asked
    }

    /// The realm of the challenge.
    pub fn realm(&self) -> &str {
        self.inner.asked.realm()
    }

    /// Answers with a user and a password.
    pub fn answer(&self, user: &str, password: &str) {
        let mut answer = self.inner.asked.clone();
        answer.set_user(user);
        answer.set_password(password);
        self.set(Answer::Given(answer));
    }

    /// Answers with a filled-in authenticator.
    pub fn answer_with(&self, authenticator: Authenticator) {
        self.set(Answer::Given(authenticator));
    }

    /// The answer comes later, from any thread or task (`answer` or `refuse`); the request
    /// waits for it (an `abort()` still ends it).
    pub fn answer_later(&self) {
        let mut answer = self.inner.answer.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*answer, Answer::Pending) {
            *answer = Answer::Deferred;
        }
    }

    /// No credentials: the reply ends with the 401/407 (`AuthenticationRequiredError` or
    /// `ProxyAuthenticationRequiredError`).
    pub fn refuse(&self) {
        self.set(Answer::Refused);
    }

    /// The answer once the slots ran: at once if given or refused, after waiting if deferred,
    /// `None` when nobody answered.
    pub(crate) async fn answered(&self) -> Option<Authenticator> {
        loop {
            let notified = self.inner.notify.notified();
            let answer = self
                .inner
                .answer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            match answer {
                Answer::Given(a) => return Some(a).filter(|a| !a.is_null()),
                Answer::Refused | Answer::Pending => return None,
                Answer::Deferred => notified.await,
            }
        }
    }
}
