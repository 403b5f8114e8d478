//! What `/r/{uuid}` (and each item of `POST /batch`) does: the gate's first stage finds the
//! record, then a credential is read or a bridge calls its upstream. A request whose record
//! changed under it starts again from the database (see `access::Gate::serve`).

use axum::Json;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use brine_core::RecordKind;
use brine_proto::{DataBody, UnlockBody};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::access::{Credential, Gate, GateError, Refusal, Try};
use crate::audit::Channel;
use crate::credential;
use crate::error::ApiError;
use crate::extract::ClientInfo;
use crate::proxy::{Incoming, Proxy, api_key};
use crate::service_tokens::ServiceTokens;
use crate::throttle::write_headers;

/// Answers a request for record `uuid`.
pub async fn open(
    gate: &Gate,
    proxy: &Proxy,
    uuid: Uuid,
    incoming: Incoming,
    client: &ClientInfo,
) -> Response {
    let mut attempt = Try::FIRST;
    let answer = loop {
        let answer = open_once(gate, proxy, uuid, &incoming, client, attempt).await;
        match attempt.after(&answer) {
            Some(next) => attempt = next,
            None => break answer,
        }
    };
    answer.unwrap_or_else(|e| ApiError::from(e).into_response())
}

async fn open_once(
    gate: &Gate,
    proxy: &Proxy,
    uuid: Uuid,
    incoming: &Incoming,
    client: &ClientInfo,
    attempt: Try,
) -> Result<Response, GateError> {
    let found = match gate.find(uuid, client, attempt).await {
        Ok(found) => found,
        Err(GateError::Refused(Refusal::NotFound)) => {
            // As slow for no record as for a wrong password.
            if let Ok(Credential::Password(password)) = presented(incoming) {
                gate.decoy(password).await?;
            }
            return Err(Refusal::NotFound.into());
        }
        Err(e) => return Err(e),
    };
    match found.record().kind {
        RecordKind::Bridge => {
            let channel = if incoming.batch {
                Channel::Batch
            } else {
                Channel::Bridge
            };
            Ok(proxy.call(found.via(channel), incoming).await?)
        }
        RecordKind::Credential => {
            if !incoming.extra_path.is_empty() {
                return Err(Refusal::NotFound.into());
            }
            let credential = presented(incoming)?;
            let channel = match (&credential, incoming.batch) {
                (Credential::Password(_), _) => Channel::Password,
                (_, true) => Channel::Batch,
                (_, false) => Channel::Read,
            };
            let query = incoming.query.as_deref();
            let reading = credential::read(found.via(channel), credential, query).await?;
            let mut response = Json(DataBody { data: reading.data }).into_response();
            if let Some(rate) = &reading.rate {
                write_headers(rate, response.headers_mut());
            }
            Ok(response)
        }
    }
}

/// What a caller presented to open a credential: GET takes an X-API-Key (a record's key or a
/// service token); POST takes either or a JSON password (never in a batch).
fn presented(incoming: &Incoming) -> Result<Credential, Refusal> {
    let key = api_key(&incoming.headers).map(|key| {
        if ServiceTokens::is_token(key) {
            Credential::ServiceToken(key.to_owned())
        } else {
            Credential::ApiKey(key.to_owned())
        }
    });
    match incoming.method {
        Method::GET | Method::HEAD => Ok(key.unwrap_or(Credential::Nothing)),
        Method::POST => {
            if let Some(key) = key {
                return Ok(key);
            }
            if incoming.body.is_empty() {
                return Ok(Credential::Nothing);
            }
            if incoming.batch {
                // Any page may send a batch (its preflight admits every origin): a password in
                // one would let other sites' visitors count towards the record's lockout.
                return Err(Refusal::BadRequest(
                    "A batch item opens a record with its X-API-Key; send a record password to \
                     POST /r/{uuid} on its own."
                        .into(),
                ));
            }
            if !crate::extract::is_json(&incoming.headers) {
                // A page of another site could otherwise post guesses from its visitors'
                // browsers (a `text/plain` body needs no preflight) and lock the record.
                return Err(Refusal::NotJson);
            }
            let UnlockBody { password } = serde_json::from_slice(&incoming.body).map_err(|_| {
                Refusal::BadRequest("Send the password as JSON: {\"password\": \"...\"}.".into())
            })?;
            Ok(Credential::Password(Zeroizing::new(password)))
        }
        _ => Err(Refusal::MethodNotAllowed {
            allowed: vec![Method::GET, Method::HEAD, Method::POST],
            message: "A credential is read with GET, or with POST and its password.",
        }),
    }
}
