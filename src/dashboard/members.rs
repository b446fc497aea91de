//! The members page of a virtual cluster: who may sign in and with which role; for its admins, the forms to invite,
//! change a role and remove. What the visitor may see and do is Kubernetes' answer to *their* client: whoever may list
//! RoleBindings in the namespace sees the members, whoever may create them gets the forms; every change is refused
//! (403) unless that answer is yes, whatever the request says. Others (`edit`, `view`) are told to ask an admin.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::DashboardState;
use super::i18n::Translation;
use super::page_error::PageError;
use super::paths;
use super::reply::{render, see_other};
use super::respond::{PageVisit, Visit};
use super::user_sessions::Session;
use crate::lifecycle::Error;
use crate::lifecycle::members::{Member, Role};
use crate::tenant::members::{MembersAccess, may_manage_members, members_access};

/// The members page.
#[derive(Template)]
#[template(path = "members.html", config = "src/dashboard/askama.toml")]
struct MembersPage<'a> {
    text: &'static Translation,
    session: &'a Session,
    members: &'a [Member],
    /// Whether the visitor may see the members.
    listed: bool,
    /// Whether the visitor may change them.
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

/// What the visitor may do with members; a failure is most often a member removed or a token expired, so it is
/// [`PageError::Refused`]: the session ends and the user signs in again.
async fn access(session: &Session, manage_only: bool) -> Result<MembersAccess, PageError> {
    let (client, namespace) = (&session.client, &session.tenant.namespace);
    let access = if manage_only {
        may_manage_members(client, namespace)
            .await
            .map(|manage| if manage { MembersAccess::Manage } else { MembersAccess::Hidden })?
    } else {
        members_access(client, namespace).await?
    };
    Ok(access)
}

/// GET /instances/:instance_id/members — the list for those who may see it; the forms for those who may manage.
pub async fn page(
    _: paths::Members,
    State(state): State<DashboardState>,
    visit: PageVisit,
) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    let access = access(&session, false).await?;
    render_page(&state, text, &session, access, StatusCode::OK, None).await
}

async fn render_page(
    state: &DashboardState,
    text: &'static Translation,
    session: &Session,
    access: MembersAccess,
    status: StatusCode,
    error: Option<&'static str>,
) -> Result<Response, PageError> {
    let instance_id = &session.tenant.instance_id;
    let listed = access != MembersAccess::Hidden;
    let members = if listed { state.broker.members(instance_id).await } else { Ok(Vec::new()) };
    let members = match members {
        Ok(members) => members,
        Err(Error::NotFound(_)) => return Err(PageError::NotFound(|text| text.not_found)),
        Err(error) => {
            tracing::warn!(instance_id, %error, "the members could not be listed");
            return Err(PageError::Unavailable);
        }
    };
    let instance_id = || instance_id.clone();
    let page = MembersPage {
        text,
        session,
        members: &members,
        listed,
        manage: access == MembersAccess::Manage,
        error,
        roles: &Role::ALL,
        default_role: Role::View.as_str(),
        overview_path: paths::Overview { instance_id: instance_id() }.to_string(),
        invite_action: paths::Members { instance_id: instance_id() }.to_string(),
        role_action: paths::MemberRole { instance_id: instance_id() }.to_string(),
        revoke_action: paths::MemberRevoke { instance_id: instance_id() }.to_string(),
    };
    Ok(render(status, &page))
}

/// What a change asks for.
enum Change {
    Invite,
    Role,
    Revoke,
}

/// POST /instances/:instance_id/members — invite a member (name, role).
pub async fn invite(
    _: paths::Members,
    state: State<DashboardState>,
    visit: PageVisit,
    form: Form<MemberForm>,
) -> Result<Response, PageError> {
    change(state, visit, form, Change::Invite).await
}

/// POST /instances/:instance_id/members/role — give a member another role (name, role).
pub async fn change_role(
    _: paths::MemberRole,
    state: State<DashboardState>,
    visit: PageVisit,
    form: Form<MemberForm>,
) -> Result<Response, PageError> {
    change(state, visit, form, Change::Role).await
}

/// POST /instances/:instance_id/members/revoke — remove a member (name); their tokens stop working at once.
pub async fn revoke(
    _: paths::MemberRevoke,
    state: State<DashboardState>,
    visit: PageVisit,
    form: Form<MemberForm>,
) -> Result<Response, PageError> {
    change(state, visit, form, Change::Revoke).await
}

async fn change(
    State(state): State<DashboardState>,
    visit: PageVisit,
    Form(form): Form<MemberForm>,
    change: Change,
) -> Result<Response, PageError> {
    let Visit { session, instance_id, text, .. } = visit;
    if access(&session, true).await? != MembersAccess::Manage {
        tracing::info!(instance_id, user = %session.tenant.username, "refused a change of members from a non-admin");
        return Err(PageError::Forbidden(|text| text.members_forbidden));
    }
    let broker = &state.broker;
    let done = match &change {
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
        Ok(()) => return Ok(see_other(&paths::Members { instance_id }.to_string())),
        Err(Error::BadRequest(_)) => (StatusCode::BAD_REQUEST, text.invalid_member),
        Err(Error::Conflict(_)) if matches!(change, Change::Invite) => (StatusCode::CONFLICT, text.already_member),
        Err(Error::Conflict(_)) => (StatusCode::CONFLICT, text.changed_meanwhile),
        Err(Error::NotFound(_)) => (StatusCode::NOT_FOUND, text.no_such_member),
        Err(Error::Unavailable { .. }) => return Err(PageError::Unavailable),
        Err(error) => {
            tracing::error!(instance_id, %error, "a change of members failed");
            return Err(PageError::signed_in(StatusCode::INTERNAL_SERVER_ERROR, |text| text.unavailable));
        }
    };
    render_page(&state, text, &session, MembersAccess::Manage, status, Some(error)).await
}

#[cfg(test)]
mod tests {
    use super::super::i18n;
    use super::*;

    fn session() -> Session {
        super::super::user_sessions::test_session("inst 1")
    }

    fn page(session: &Session, members: &[Member], listed: bool, manage: bool) -> String {
        page_of(session, members, listed, manage).render().expect("renders")
    }

    fn page_of<'a>(session: &'a Session, members: &'a [Member], listed: bool, manage: bool) -> MembersPage<'a> {
        let base = paths::Members { instance_id: "inst 1".to_owned() }.to_string();
        MembersPage {
            text: &i18n::EN,
            session,
            members,
            listed,
            manage,
            error: Some(i18n::EN.invalid_member),
            roles: &Role::ALL,
            default_role: Role::View.as_str(),
            overview_path: "/instances/inst%201".to_owned(),
            invite_action: base.clone(),
            role_action: format!("{base}/role"),
            revoke_action: format!("{base}/revoke"),
        }
    }

    #[tokio::test]
    async fn admins_get_the_forms_others_only_the_list_and_names_are_escaped() {
        let session = session();
        let members = [
            Member { name: "cloudfoundry owner".to_owned(), role: Some(Role::Admin), owner: true },
            Member { name: "<script>alert(1)</script>".to_owned(), role: Some(Role::Edit), owner: false },
            Member { name: "bob@example.test".to_owned(), role: None, owner: false },
        ];
        let html = page(&session, &members, true, true);
        assert!(html.contains(r#"<form method="post" action="/instances/inst%201/members">"#), "{html}");
        assert!(html.contains(r#"action="/instances/inst%201/members/role""#));
        assert!(html.contains(r#"action="/instances/inst%201/members/revoke""#));
        assert!(html.contains(r#"<option value="edit" selected>"#), "the member's role is preselected: {html}");
        assert!(html.contains("admin (owner)") && html.contains(r#"<td class="member-role">-</td>"#));
        assert_eq!(html.matches("members/revoke").count(), 2, "no removal of the owner");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;") || html.contains("&#60;script&#62;"), "{html}");
        assert!(html.contains(i18n::EN.invalid_member) && !html.contains("style="));
        let read_only = page(&session, &members, true, false);
        assert!(
            read_only.contains(r#"id="read-only""#) && !read_only.contains("<form method=\"post\" action=\"/instances")
        );
        assert!(read_only.contains("bob@example.test"), "whoever may list RoleBindings sees the members");
        let hidden = page(&session, &[], false, false);
        assert!(hidden.contains(r#"id="read-only""#) && !hidden.contains("<table"), "{hidden}");
        let korean = MembersPage { text: &i18n::KO, ..page_of(&session, &members, true, true) };
        let korean = korean.render().expect("renders");
        assert!(korean.contains(r#"<html lang="ko">"#) && korean.contains("멤버") && korean.contains("초대"));
    }
}
