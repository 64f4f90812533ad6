//! The upload page: server-rendered HTML that works without JavaScript, and the static
//! assets that upgrade it to live uploads, progress and transcripts.
//!
//! Routes: `GET /` (form and history, or the login form to a visitor without a session
//! when authentication is on; `?q=` searches the history and `?before=` pages it), `POST /jobs` (the no-JS form: 303 to the job's page,
//! or the form again with the server's message and status; `GET /jobs` goes back to `/`),
//! `GET /jobs/{id}` (one job, refreshing itself until it ends), `POST /jobs/{id}/delete`
//! (303 back to `/`), `POST /login` and `POST /logout` (`session.rs`), `GET /api` (the API
//! reference, `reference.rs`), and `GET /static/{hash}/{file}` (`assets.rs`). The script
//! talks to the job API directly.
//!
//! With several models installed the form has a model menu, each option saying what the
//! model is for; the language menu and Translate are there when any model is multilingual,
//! and the script hides them while an English-only model is chosen.
//!
//! Uploads go through [`crate::http::submit_upload`] with the API's own option parsing, so
//! the form and the API accept and refuse exactly the same things. Pages are never cached
//! (the server's default `no-store`); assets are, forever, under hashed URLs.

mod admin;
mod assets;
mod pages;
mod reference;
mod session;

use std::sync::Arc;

use askama::Template;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Reply};

pub(crate) use self::assets::etag_matches;
use self::pages::{CardView, ErrorPage, HistoryRow, IndexPage, JobPage, Layout, LoginPage, ModelOption, UploadChecks};
pub(crate) use self::session::LOGIN_FIELDS;
use crate::auth::Identity;
use crate::errors::ApiError;
use crate::http::routes::{Endpoint, at, at_id};
use crate::http::{
    AppState, Caller, JobView, bool_field, caller, error_response, job_request, parse_id, percent_encode,
    upload_request, with_state,
};
use crate::jobs::Status;
use crate::upload::Received;

/// Jobs the history shows; older ones stay reachable through the job API.
const HISTORY_LENGTH: usize = 20;

pub fn routes(state: &Arc<AppState>) -> BoxedFilter<(Response,)> {
    let index = at(Endpoint::Index)
        .and(with_state(state))
        .and(warp::ext::optional::<Caller>())
        .and(warp::query::<HistoryQuery>())
        .map(|state: Arc<AppState>, caller: Option<Caller>, query: HistoryQuery| {
            let next = query.next.as_deref().and_then(session::same_origin_path);
            match (caller, next) {
                // Logged in meanwhile (another tab): straight to the linked page.
                (Some(_), Some(next)) => see_other(next),
                (Some(caller), None) => {
                    page(&state, &caller, index_page(&state, &caller, &FormValues::default(), &query, None))
                }
                (None, next) => login_page(&state, None, next),
            }
        });
    let submit = at(Endpoint::FormSubmit).and(upload_request(state)).then(
        |state: Arc<AppState>, caller: Caller, content_type, body| async move {
            let mut form = FormValues::default();
            let submitted = crate::http::submit_upload(&state, &caller, content_type, body, |received| {
                form = FormValues::read(received);
                job_request(received)
            })
            .await;
            match submitted {
                Ok(snapshot) => see_other(&format!("/jobs/{}", snapshot.record.id)),
                // The form again, saying what was refused, with the refusal's own status.
                Err(error) => match index_page(
                    &state,
                    &caller,
                    &form,
                    &HistoryQuery::default(),
                    Some(pages::sentence(&error.client_message())),
                ) {
                    Ok(html) => html_error(&error, html),
                    Err(failure) => page(&state, &caller, Err(failure)),
                },
            }
        },
    );
    // Reloading the page a refused form post left in the address bar lands on the form.
    let jobs = at(Endpoint::FormBack).map(|| see_other("/"));
    let job = at_id(Endpoint::JobPage)
        .and(with_state(state))
        .and(caller())
        .map(|id: String, state: Arc<AppState>, caller: Caller| page(&state, &caller, job_page(&state, &caller, &id)));
    // SECURITY: no CSRF token. A cross-site page cannot delete what it cannot name, and job
    // ids hold 74 random bits; a cross-site upload could equally go to POST /api/jobs.
    let delete = at_id(Endpoint::JobPageDelete).and(with_state(state)).and(caller()).map(
        |id: String, state: Arc<AppState>, caller: Caller| match parse_id(&id)
            .and_then(|id| Ok(state.jobs.delete(id, &caller.scope)?))
        {
            Ok(()) => see_other("/"),
            Err(error) => page(&state, &caller, Err(error)),
        },
    );
    index
        .or(submit)
        .unify()
        .or(jobs)
        .unify()
        .or(job)
        .unify()
        .or(delete)
        .unify()
        .or(session::routes(state))
        .unify()
        .or(admin::routes(state))
        .unify()
        .or(reference::route(state))
        .unify()
        .or(assets::route())
        .unify()
        .boxed()
}

/// What the no-JS form asked for, kept to fill the form in again after an error.
#[derive(Debug, Default)]
struct FormValues {
    /// The model's name; empty for the default.
    model: String,
    language: String,
    translate: bool,
    words: bool,
    prompt: String,
}

impl FormValues {
    fn read(form: &Received) -> FormValues {
        FormValues {
            model: form.field("model").unwrap_or_default().trim().to_owned(),
            language: form.field("language").unwrap_or("auto").trim().to_ascii_lowercase(),
            translate: checked(form, "translate"),
            words: checked(form, "words"),
            prompt: form.field("prompt").unwrap_or_default().to_owned(),
        }
    }
}

/// A checkbox the refused form sent ticked, read as the job API reads it (a value it does
/// not take counts as unticked: the form is only being filled in again).
fn checked(form: &Received, name: &'static str) -> bool {
    bool_field(form, name, false).unwrap_or(false)
}

/// `GET /?q=...&before=...`: the history's search and page, as the job API's list takes them.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HistoryQuery {
    /// Only jobs whose file name or transcript contains this, ignoring case.
    q: Option<String>,
    /// Jobs older than this job id.
    before: Option<String>,
    /// Where a visitor sent to the login form goes after logging in.
    next: Option<String>,
}

fn layout(state: &AppState, caller: Option<&Caller>) -> Layout {
    let user = caller.and_then(|caller| match &caller.identity {
        Identity::Key { name, .. } if caller.by_session => Some(name.clone()),
        _ => None,
    });
    Layout::new(&state.jobs.models().default_model().name, user)
}

/// The login form; `error` is why the last attempt failed, `next` where to go after it.
fn login_page(state: &AppState, error: Option<&ApiError>, next: Option<&str>) -> Response {
    let login = LoginPage {
        layout: layout(state, None),
        error: error.map(|error| pages::sentence(&error.client_message())),
        no_keys: !state.auth.has_live_keys(),
        session_hours: state.config.session_hours,
        next: next.map(str::to_owned),
    };
    match (render(&login), error) {
        (Ok(html), None) => warp::reply::html(html).into_response(),
        (Ok(html), Some(error)) => html_error(error, html),
        (Err(failure), _) => error_response(&failure),
    }
}

fn render(template: &impl Template) -> Result<String, ApiError> {
    template.render().map_err(|error| ApiError::Internal(Box::new(error)))
}

/// The form and the history; `error` is the server's sentence after a refused upload.
fn index_page(
    state: &AppState,
    caller: &Caller,
    form: &FormValues,
    query: &HistoryQuery,
    error: Option<String>,
) -> Result<String, ApiError> {
    let models = state.jobs.models();
    let chosen = models.resolve(Some(&form.model)).unwrap_or_else(|_| models.default_model().clone());
    let multilingual = models.installed().iter().any(|model| model.is_multilingual());
    let smallest = models.installed().iter().map(|model| model.size_bytes()).min();
    let model_menu = if models.installed().len() > 1 {
        models
            .installed()
            .iter()
            .map(|model| ModelOption {
                name: model.name.clone(),
                label: pages::model_label(
                    &model.name,
                    model.is_multilingual().then(|| model.language_count()),
                    Some(model.size_bytes()) == smallest,
                    models.times_slower(&model.name),
                    model.name == models.default_model().name,
                ),
                multilingual: model.is_multilingual(),
                selected: model.name == chosen.name,
            })
            .collect()
    } else {
        Vec::new()
    };
    let search = query.q.as_deref().map(str::trim).unwrap_or_default();
    let before = query.before.as_deref().map(parse_id).transpose()?;
    let (recent, more) = state.jobs.list(&caller.scope, before, HISTORY_LENGTH, Some(search).filter(|q| !q.is_empty()));
    let older_url = match (more, recent.last()) {
        (true, Some(last)) => Some(format!("/?before={}&q={}#history-title", last.record.id, percent_encode(search))),
        _ => None,
    };
    let history = recent.iter().map(|snapshot| HistoryRow::new(&JobView::new(state, snapshot))).collect();
    render(&IndexPage {
        layout: layout(state, Some(caller)),
        error,
        models: model_menu,
        languages: pages::languages(multilingual, &form.language),
        multilingual,
        english_only_chosen: !chosen.is_multilingual(),
        translate: form.translate,
        words: form.words,
        prompt: form.prompt.clone(),
        checks: UploadChecks::new(state.upload_limits.max_file_bytes),
        search: search.to_owned(),
        history,
        older_url,
        card: CardView::blank(),
        blank_row: HistoryRow::blank(),
    })
}

/// A job's page: its transcript once done, else what is known so far.
fn job_page(state: &AppState, caller: &Caller, id: &str) -> Result<String, ApiError> {
    let id = parse_id(id)?;
    let snapshot = state.jobs.get(id, &caller.scope)?;
    let view = JobView::new(state, &snapshot);
    let card = if snapshot.record.status == Status::Done {
        CardView::new(&view, &state.jobs.result(id, &caller.scope)?.segments)
    } else {
        CardView::new(&view, &snapshot.segments)
    };
    render(&JobPage { layout: layout(state, Some(caller)), card })
}

/// A page, or the error page with the error's status.
fn page(state: &AppState, caller: &Caller, rendered: Result<String, ApiError>) -> Response {
    match rendered {
        Ok(html) => warp::reply::html(html).into_response(),
        Err(error) => {
            let message = pages::sentence(&error.client_message());
            let status = error.reply().status;
            let html = render(&ErrorPage { layout: layout(state, Some(caller)), status, message })
                .unwrap_or_else(|_| error.client_message());
            html_error(&error, html)
        }
    }
}

/// The error's status and headers (and its log line, for a 5xx) with an HTML body.
fn html_error(error: &ApiError, html: String) -> Response {
    let mut response = error_response(error);
    *response.body_mut() = html.into();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

/// After a form post the browser GETs the new page, so reloading it posts nothing twice.
fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}
