//! TAP options of vm endpoints (`tap_owner`, `tap_group`, `tap_queues`):
//! refused for other endpoints, and turned into how the dataplane makes
//! the TAP.
//!
//! Contract: [`check_vm_only`] fails, naming the first TAP field given, for
//! an endpoint whose namespace is not a vm namespace; [`access`] never
//! leaves a TAP without owner and group (the kernel would let any user
//! attach to it), so a TAP without options is root's.

use bulkhead_dataplane::kernel::TapAccess;
use bulkhead_model::{EndpointSpec, InvalidValue, Isolation, Namespace, TapOptions};

use crate::error::Result;

/// TAP options make sense only for a TAP (a vm namespace's port).
pub(crate) fn check_vm_only(spec: &EndpointSpec, namespace: &Namespace) -> Result<()> {
    if namespace.isolation == Isolation::Vm {
        return Ok(());
    }
    match TapOptions::first_field(
        spec.tap_owner.as_deref(),
        spec.tap_group.as_deref(),
        spec.tap_queues.as_deref(),
    ) {
        Some((field, value)) => Err(InvalidValue::new(
            field,
            value,
            format!(
                "only for an endpoint of a vm namespace ({:?} has isolation {})",
                namespace.name.as_str(),
                namespace.isolation
            ),
        )
        .into()),
        None => Ok(()),
    }
}

/// How the dataplane makes the TAP of an endpoint with options `tap`.
pub(crate) fn access(tap: Option<&TapOptions>) -> TapAccess {
    let tap = tap.copied().unwrap_or_default();
    TapAccess {
        // The kernel lets anyone attach to a TAP with neither owner nor
        // group: unless a group is given, the owner is at least root.
        owner: tap.owner.or(tap.group.is_none().then_some(0)),
        group: tap.group,
        multi_queue: tap.multi_queue(),
    }
}
