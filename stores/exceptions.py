"""Errors the store services raise; every interface turns them into a 4xx or a form error."""

from platform_site.errors import ApplicationError


class StoreNameInvalid(ApplicationError):
    # "invalid", like every other request that does not validate: the API's code for a bad name.
    code = "invalid"
    http_status = 400


class StoreNameTaken(ApplicationError):
    code = "name_taken"
    http_status = 409


class PlanLimitReached(ApplicationError):
    code = "plan_limit"
    http_status = 409


class InvalidStoreState(ApplicationError):
    """The store is not in a status from which the asked-for action is possible."""

    code = "invalid_state"
    http_status = 409


class EngineUnavailable(ApplicationError):
    code = "engine_unavailable"
    http_status = 400


class TenantInvalid(ApplicationError):
    code = "invalid"
    http_status = 400


class AccountExists(ApplicationError):
    code = "account_exists"
    http_status = 409


class EmailInvalid(ApplicationError):
    code = "invalid_email"
    http_status = 400


class DomainInvalid(ApplicationError):
    """The text is not a domain a merchant may attach (malformed, IP, wildcard, platform host...)."""

    code = "invalid_domain"
    http_status = 400


class DomainTaken(ApplicationError):
    """Another live store already claims the domain."""

    code = "domain_taken"
    http_status = 409


class InvalidDomainState(ApplicationError):
    """The domain is not in a status from which the asked-for action is possible."""

    code = "invalid_state"
    http_status = 409
