"""OAuth2 client credentials: the token endpoint and the auth discovery endpoint."""

from werkzeug.wrappers import Request, Response

from halo_pipeline.simulator.config import VALID_SCOPES, SimulatorConfig
from halo_pipeline.simulator.responses import html_error, json_response, oauth_error
from halo_pipeline.simulator.state import State


def token(state: State, config: SimulatorConfig, request: Request) -> Response:
    form = request.form
    # Clients pass the tenant either way; Halo answers a wrong one with an HTML page, not OAuth.
    tenant = request.args.get("tenant") or form.get("tenant")
    if config.tenant is not None and tenant != config.tenant:
        return html_error(config.wrong_tenant_status, "Server Error")
    if form.get("grant_type") != "client_credentials":
        return oauth_error("unsupported_grant_type")
    if (
        form.get("client_id") != config.client_id
        or form.get("client_secret") != config.client_secret
    ):
        return oauth_error("invalid_client")
    scope = form.get("scope") or "all"
    if not set(scope.split()) <= VALID_SCOPES:
        return oauth_error("invalid_scope")
    return json_response(
        {
            "access_token": state.issue_token(config.clock() + config.token_lifetime_s),
            "token_type": "Bearer",
            "expires_in": config.token_lifetime_s,
            "scope": scope,
        }
    )


def authinfo(state: State, config: SimulatorConfig, request: Request) -> Response:
    return json_response({"auth_url": request.host_url + "auth", "tenant_id": config.tenant})
