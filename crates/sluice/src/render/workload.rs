//! The StatefulSet that runs `sluice serve` for a space, and its ServiceAccount.
//!
//! Brokered spaces run one replica; standard ones `spec.router.minReplicas` of the infra
//! config. Each replica is an independent broker with its own journal (volume claim
//! `data-<space>-<n>`): replicas share the configuration, not messages, and the Service
//! spreads connections over them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapProjection, Container, ContainerPort, EmptyDirVolumeSource,
    HTTPGetAction, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ProjectedVolumeSource, ResourceRequirements, SeccompProfile,
    SecretProjection, SecretVolumeSource, SecurityContext, ServiceAccount, Volume, VolumeMount,
    VolumeProjection, VolumeResourceRequirements,
};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use sluice_config::resources::UserAuthenticationType;

use super::Target;
use super::config::{self, Config};
use super::endpoints::Tls;
use super::flags::{self, HTTP};
use super::infra::Sizing;
use super::yaml::value;

/// The container's arguments: `serve`, [`flags::SERVE_FLAGS`], the space, and the TLS flags.
pub(super) fn args(target: &Target<'_>, tls: &Tls) -> Vec<String> {
    let mut args = vec![flags::SERVE.to_owned()];
    for (flag, value) in flags::SERVE_FLAGS {
        args.extend([(*flag).to_owned(), (*value).to_owned()]);
    }
    args.extend([
        flags::ADDRESS_SPACE_FLAG.to_owned(),
        target.space.qualified_name(),
        // The exported `service.host` is the Service's, as EnMasse exported it.
        flags::EXPORT_HOST_FLAG.to_owned(),
        super::endpoints::service_host(target),
    ]);
    match tls {
        Tls::Secret { .. } => {
            for (flag, value) in flags::TLS_FLAGS {
                args.extend([(*flag).to_owned(), (*value).to_owned()]);
            }
        }
        Tls::SelfSigned(names) => {
            for name in names {
                args.extend([flags::TLS_HOSTNAME_FLAG.to_owned(), name.clone()]);
            }
        }
    }
    args
}

fn probe(path: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::Int(HTTP.number),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

/// The pod's volumes and the container's mounts (the journal's comes from the claim template).
fn volumes(target: &Target<'_>, tls: &Tls, config: &Config) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut sources = vec![VolumeProjection {
        config_map: Some(ConfigMapProjection {
            name: config::config_map_name(target),
            ..ConfigMapProjection::default()
        }),
        ..VolumeProjection::default()
    }];
    if config.users.is_some() {
        sources.push(VolumeProjection {
            secret: Some(SecretProjection {
                name: config::users_secret_name(target),
                ..SecretProjection::default()
            }),
            ..VolumeProjection::default()
        });
    }
    let mut volumes = vec![
        Volume {
            name: "config".to_owned(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(sources),
                ..ProjectedVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: "export".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
    ];
    let mut mounts = vec![
        mount("config", flags::CONFIG_DIR, true),
        mount("data", flags::DATA_DIR, false),
        mount("export", flags::EXPORT_DIR, false),
    ];
    if let Some(secret) = tls.secret_name() {
        volumes.push(Volume {
            name: "tls".to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.to_owned()),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
        mounts.push(mount("tls", flags::TLS_DIR, true));
    }
    (volumes, mounts)
}

/// Whether a MessagingUser of the space logs in with a service-account token, which the pod
/// reviews with the API server (TokenReview).
fn reviews_tokens(target: &Target<'_>) -> bool {
    target
        .space
        .users
        .iter()
        .any(|u| u.resource.spec.authentication.auth_type == UserAuthenticationType::Serviceaccount)
}

pub(super) fn stateful_set(
    target: &Target<'_>,
    sizing: &Sizing,
    tls: &Tls,
    config: &Config,
) -> StatefulSet {
    let (volumes, volume_mounts) = volumes(target, tls, config);
    let memory = sizing
        .memory
        .clone()
        .map(|m| BTreeMap::from([("memory".to_owned(), m)]));
    let container = Container {
        name: "sluice".to_owned(),
        image: Some(target.image.to_owned()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        command: Some(vec![flags::BINARY.to_owned()]),
        args: Some(args(target, tls)),
        ports: Some(
            flags::PORTS
                .iter()
                .map(|p| ContainerPort {
                    name: Some(p.name.to_owned()),
                    container_port: p.number,
                    protocol: Some("TCP".to_owned()),
                    ..ContainerPort::default()
                })
                .collect(),
        ),
        // Journal recovery runs before the broker serves: the startup probe gives it five
        // minutes before liveness counts.
        startup_probe: Some(probe(flags::LIVENESS_PATH, 5, 60)),
        liveness_probe: Some(probe(flags::LIVENESS_PATH, 10, 3)),
        readiness_probe: Some(probe(flags::READINESS_PATH, 5, 2)),
        resources: memory.map(|m| ResourceRequirements {
            limits: Some(m.clone()),
            requests: Some(m),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(volume_mounts),
        ..Container::default()
    };
    let mut annotations = BTreeMap::new();
    annotations.insert("sluice/config-sha256".to_owned(), config.digest.clone());
    let pod = PodSpec {
        containers: vec![container],
        service_account_name: Some(target.name().to_owned()),
        automount_service_account_token: Some(reviews_tokens(target)),
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(30),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(flags::RUN_AS_ID),
            run_as_group: Some(flags::RUN_AS_ID),
            fs_group: Some(flags::RUN_AS_ID),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        volumes: Some(volumes),
        ..PodSpec::default()
    };
    let claim = PersistentVolumeClaim {
        // A StatefulSet's claim templates cannot be changed once applied: only the labels
        // that never change.
        metadata: ObjectMeta {
            name: Some("data".to_owned()),
            labels: Some(target.selector()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: sizing.storage_class.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    sizing.storage.clone(),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    };
    StatefulSet {
        metadata: target.meta(target.name()),
        spec: StatefulSetSpec {
            replicas: Some(sizing.replicas),
            service_name: Some(target.name().to_owned()),
            // Replicas are independent brokers: none waits for another.
            pod_management_policy: Some("Parallel".to_owned()),
            selector: LabelSelector {
                match_labels: Some(target.selector()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(target.labels()),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            volume_claim_templates: Some(vec![claim]),
            ..StatefulSetSpec::default()
        },
        ..StatefulSet::default()
    }
}

/// The pod's ServiceAccount, and when a user logs in with a service-account token, the
/// binding to `system:auth-delegator` that lets the pod create TokenReviews.
pub(super) fn service_account(target: &Target<'_>) -> Vec<Value> {
    let mut objects = vec![value(&ServiceAccount {
        metadata: target.meta(target.name()),
        automount_service_account_token: Some(reviews_tokens(target)),
        ..ServiceAccount::default()
    })];
    if reviews_tokens(target) {
        let name = match target.namespace() {
            Some(ns) => format!("sluice-{ns}-{}-token-review", target.name()),
            None => format!("sluice-{}-token-review", target.name()),
        };
        objects.push(value(&ClusterRoleBinding {
            metadata: ObjectMeta {
                name: Some(name),
                labels: Some(target.labels()),
                ..ObjectMeta::default()
            },
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".to_owned()),
                kind: "ClusterRole".to_owned(),
                name: "system:auth-delegator".to_owned(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".to_owned(),
                name: target.name().to_owned(),
                // Without a namespace the binding cannot name the account's; the operator
                // sets it (a ClusterRoleBinding has no namespace of its own).
                namespace: Some(target.namespace().unwrap_or("default").to_owned()),
                ..Subject::default()
            }]),
        }));
    }
    objects
}
