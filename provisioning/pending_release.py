"""Settling a release left `pending-*`: helm refuses every later install, upgrade or rollback of it
until someone does. Used by the reconciler (releases nobody is acting on) and by a run that finds its
own store's release left pending by an interrupted earlier run."""

from __future__ import annotations

from provisioning.helm import HelmClient, HelmRelease


def pending_release_settle(helm: HelmClient, *, namespace: str, release: str, timeout_seconds: int) -> None:
    """Roll back to the newest revision that was ever good (deployed or superseded), or uninstall a
    release that never had one. Not simply `revision - 1`: an upgrade stopped midway by its budget has
    usually begun its own rollback, leaving `failed` (the broken version) before the `pending-rollback`,
    and rolling back onto the broken version would wait out helm's whole timeout. Raises HelmError
    when helm refuses (another operation really is in progress)."""
    good = [entry.revision for entry in helm.history(release=release, namespace=namespace) if entry.was_good]
    if not good:
        helm.uninstall(release=release, namespace=namespace, timeout_seconds=timeout_seconds)
    else:
        helm.rollback(
            release=release, namespace=namespace, revision=max(good), timeout_seconds=timeout_seconds
        )


def pending_release_of(helm: HelmClient, *, namespace: str, release: str) -> HelmRelease | None:
    """The release, when helm has it pending (one `helm list -n`)."""
    return next(
        (
            found
            for found in helm.list_releases(namespace=namespace)
            if found.name == release and found.is_pending
        ),
        None,
    )
