//! From the names on the command line to the server's descriptors, with
//! errors that list what the server does offer.

use prost_reflect::{MethodDescriptor, ServiceDescriptor};

use super::args::Target;
use super::error::Failure;
use super::reflection::Reflection;

/// The service named `name`: its full name, or a unique suffix of one
/// (`Echo` for `plexus.echo.v1.Echo`).
pub fn service_name(reflection: &Reflection, target: &Target) -> Result<String, Failure> {
    let services = reflection.services();
    let name = target.service.as_str();
    if services.iter().any(|s| s == name) {
        return Ok(name.to_owned());
    }
    let suffix = format!(".{name}");
    let matches: Vec<&String> = services.iter().filter(|s| s.ends_with(&suffix)).collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            // `pkg.Service` written in the dot form without a method.
            if let Some(method) = &target.method {
                let whole = format!("{name}.{method}");
                if services.contains(&whole) {
                    return Err(Failure::usage(format!(
                        "`{whole}` is a service; name one of its methods, as {whole}/METHOD \
                         (`--list {whole}` shows them)"
                    )));
                }
            }
            Err(Failure::usage(format!(
                "unknown service `{name}`; the server offers: {}",
                list(services)
            )))
        }
        many => Err(Failure::usage(format!(
            "`{name}` is ambiguous; it could be: {}",
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The service `name` in the files the server sent for it.
pub async fn service(
    reflection: &mut Reflection,
    name: &str,
) -> Result<ServiceDescriptor, Failure> {
    let pool = reflection.pool_for(name).await?;
    pool.get_service_by_name(name).ok_or_else(|| {
        Failure::unusable(format!(
            "the server lists the service {name} but the files it sent do not declare it"
        ))
    })
}

/// The method `name` of `service`.
pub fn method(service: &ServiceDescriptor, name: &str) -> Result<MethodDescriptor, Failure> {
    service.methods().find(|m| m.name() == name).ok_or_else(|| {
        let names: Vec<String> = service.methods().map(|m| m.name().to_owned()).collect();
        Failure::usage(format!(
            "unknown method `{name}` in service {}; its methods: {}",
            service.full_name(),
            list(&names)
        ))
    })
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}
