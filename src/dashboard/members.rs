//! The members page of a virtual cluster: who may sign in and with which role; for its admins, the forms to invite,
//! change a role and remove. Whether the visitor may manage members is Kubernetes' answer to *their* client (may they
//! create RoleBindings in the namespace?): the page hides the forms from others, and every change is refused (403)
//! unless the answer is yes, whatever the request says.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::DashboardState;
use super::i18n::Text;
use super::respond::{Visitor, login_path, message, render, see_other, text_for, visitor};
use super::sessions::Session;
use crate::broker::members::{Member, Role, may_manage_members};
use crate::broker::{Error, percent_encode};

/// The members page.
#[derive(Template)]
#[template(path = "members.html", config = "src/dashboard/askama.toml")]
struct MembersPage<'a> {
    text: &'static Text,
    session: &'a Session,
    members: &'a [Member],
    manage: bool,
    error: Option<&'static str>,
    roles: &'static [Role],
    default_role: &'static str,
    overview_path: String,
    invite_action: String,
    role_action: String,
    revoke_action: String,
}

impl MembersPage<'_> {
    /// A member's role as shown: `-` while a change of role replaces its RoleBinding.
    fn member_role(&self, member: &Member) -> &'static str {
        member.role.map_or("-", Role::as_str)
    }
}

/// The fields of the members forms; missing ones are empty, and refused as invalid.
#[derive(Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

/// The members page's path.
pub fn members_path(instance_id: &str) -> String {
    format!("/instances/{}/members", percent_encode(instance_id))
}

/// The signed-in session for `instance_id`'s pages, or the answer to give instead.
fn signed_in(
    state: &DashboardState,
    headers: &HeaderMap,
    instance_id: &str,
) -> Result<(String, Session), Box<Response>> {
    let text = text_for(headers);
    match visitor(state, headers, instance_id) {
        Visitor::SignedIn(id, session) => Ok((id, *session)),
        Visitor::OfAnotherInstance => Err(Box::new(message(StatusCode::FORBIDDEN, text, text.other_instance, true))),
        Visitor::Anonymous => Err(Box::new(see_other(&login_path(instance_id)))),
    }
}

/// Whether the visitor may manage members; a token the apiserver no longer accepts ends the session.
async fn may_manage(
    state: &DashboardState,
    id: &str,
    session: &Session,
    text: &'static Text,
) -> Result<bool, Box<Response>> {
    match may_manage_members(&session.client, &session.tenant.namespace).await {
        Ok(allowed) => Ok(allowed),
        Err(Error::Unavailable(_)) => {
            Err(Box::new(message(StatusCode::SERVICE_UNAVAILABLE, text, text.unavailable, true)))
        }
        Err(error) => {
            // Most often the member was removed or the token expired: the user signs in again.
            tracing::warn!(instance_id = %session.tenant.instance_id, %error, "access review as the signed-in user failed; ending the session");
            state.sessions.end(id);
            Err(Box::new(see_other(&login_path(&session.tenant.instance_id))))
        }
    }
}

/// GET /instances/:instance_id/members — the list; the forms for those who may manage members.
pub async fn page(
    State(state): State<DashboardState>,
    Path(instance_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let text = text_for(&headers);
    let (id, session) = match signed_in(&state, &headers, &instance_id) {
        Ok(signed_in) => signed_in,
        Err(answer) => return *answer,
    };
    let manage = match may_manage(&state, &id, &session, text).await {
        Ok(manage) => manage,
        Err(answer) => return *answer,
    };
    render_page(&state, text, &session, manage, StatusCode::OK, None).await
}

async fn render_page(
    state: &DashboardState,
    text: &'static Text,
    session: &Session,
    manage: bool,
    status: StatusCode,
    error: Option<&'static str>,
) -> Response {
    let instance_id = &session.tenant.instance_id;
    let members = match state.broker.members(instance_id).await {
        Ok(members) => members,
        Err(Error::NotFound(_)) => return message(StatusCode::NOT_FOUND, text, text.not_found, true),
        Err(error) => {
            tracing::warn!(instance_id, %error, "the members could not be listed");
            return message(StatusCode::SERVICE_UNAVAILABLE, text, text.unavailable, true);
        }
    };
    let base = members_path(instance_id);
    let page = MembersPage {
        text,
        session,
        members: &members,
        manage,
        error,
        roles: &Role::ALL,
        default_role: Role::View.as_str(),
        overview_path: format!("/instances/{}", percent_encode(instance_id)),
        invite_action: base.clone(),
        role_action: format!("{base}/role"),
        revoke_action: format!("{base}/revoke"),
    };
    render(status, &page)
}

/// What a change asks for.
enum Change {
    Invite,
    Role,
    Revoke,
}

/// POST /instances/:instance_id/members — invite a member (name, role).
pub async fn invite(
    state: State<DashboardState>,
    path: Path<String>,
    headers: HeaderMap,
    form: Form<MemberForm>,
) -> Response {
    change(state, path, headers, form, Change::Invite).await
}

/// POST /instances/:instance_id/members/role — give a member another role (name, role).
pub async fn change_role(
    state: State<DashboardState>,
    path: Path<String>,
    headers: HeaderMap,
    form: Form<MemberForm>,
) -> Response {
    change(state, path, headers, form, Change::Role).await
}

/// POST /instances/:instance_id/members/revoke — remove a member (name); their tokens stop working at once.
pub async fn revoke(
    state: State<DashboardState>,
    path: Path<String>,
    headers: HeaderMap,
    form: Form<MemberForm>,
) -> Response {
    change(state, path, headers, form, Change::Revoke).await
}

async fn change(
    State(state): State<DashboardState>,
    Path(instance_id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<MemberForm>,
    change: Change,
) -> Response {
    let text = text_for(&headers);
    let (id, session) = match signed_in(&state, &headers, &instance_id) {
        Ok(signed_in) => signed_in,
        Err(answer) => return *answer,
    };
    match may_manage(&state, &id, &session, text).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(instance_id, user = %session.tenant.username, "refused a change of members from a non-admin");
            return message(StatusCode::FORBIDDEN, text, text.members_forbidden, true);
        }
        Err(answer) => return *answer,
    }
    let broker = &state.broker;
    let done = match change {
        Change::Invite => match Role::parse(&form.role) {
            Ok(role) => broker.invite(&instance_id, &form.name, role).await,
            Err(error) => Err(error),
        },
        Change::Role => match Role::parse(&form.role) {
            Ok(role) => broker.change_role(&instance_id, &form.name, role).await,
            Err(error) => Err(error),
        },
        Change::Revoke => match broker.revoke(&instance_id, &form.name).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::NotFound(format!("{} is not a member", form.name))),
            Err(error) => Err(error),
        },
    };
    let (status, error) = match done {
        Ok(()) => return see_other(&members_path(&instance_id)),
        Err(Error::BadRequest(_)) => (StatusCode::BAD_REQUEST, text.invalid_member),
        Err(Error::Conflict(_)) => (StatusCode::CONFLICT, text.already_member),
        Err(Error::NotFound(_)) => (StatusCode::NOT_FOUND, text.no_such_member),
        Err(Error::Unavailable(_)) => return message(StatusCode::SERVICE_UNAVAILABLE, text, text.unavailable, true),
        Err(error) => {
            tracing::error!(instance_id, %error, "a change of members failed");
            return message(StatusCode::INTERNAL_SERVER_ERROR, text, text.unavailable, true);
        }
    };
    render_page(&state, text, &session, true, status, Some(error)).await
}
