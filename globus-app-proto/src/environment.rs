//! Globus environments and service base URLs.
//!
//! The adapters read `GLOBUS_SDK_ENVIRONMENT` and
//! `GLOBUS_SDK_SERVICE_URL_<SERVICE>` and pass their values here; this
//! module never reads the process environment itself.

use std::fmt;

use url::Url;

/// A Globus deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Environment {
    /// `production`, the default.
    #[default]
    Production,
    /// `preview`.
    Preview,
    /// `sandbox`.
    Sandbox,
    /// `integration`.
    Integration,
    /// `test`.
    Test,
    /// `staging`.
    Staging,
}

/// An environment name or service URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvironmentError {
    /// The environment name is not one of the known ones.
    #[error("unknown Globus environment {0:?}")]
    UnknownEnvironment(String),
    /// A service URL override is not an absolute http(s) URL.
    #[error("the service URL {url:?} for {service} is not an absolute http or https URL")]
    InvalidServiceUrl {
        /// The service, e.g. `auth`.
        service: String,
        /// The rejected value.
        url: String,
    },
}

impl Environment {
    /// Every known environment.
    pub const ALL: [Self; 6] = [
        Self::Production,
        Self::Preview,
        Self::Sandbox,
        Self::Integration,
        Self::Test,
        Self::Staging,
    ];

    /// The environment named `name`.
    pub fn from_name(name: &str) -> Result<Self, EnvironmentError> {
        Self::ALL
            .into_iter()
            .find(|e| e.name() == name)
            .ok_or_else(|| EnvironmentError::UnknownEnvironment(name.to_owned()))
    }

    /// The environment a `GLOBUS_SDK_ENVIRONMENT` value selects: unset or
    /// empty means production.
    ///
    /// ```
    /// use globus_app_proto::environment::Environment;
    /// assert_eq!(Environment::from_env_value(None)?, Environment::Production);
    /// assert_eq!(Environment::from_env_value(Some("sandbox"))?, Environment::Sandbox);
    /// assert!(Environment::from_env_value(Some("nope")).is_err());
    /// # Ok::<(), globus_app_proto::environment::EnvironmentError>(())
    /// ```
    pub fn from_env_value(value: Option<&str>) -> Result<Self, EnvironmentError> {
        match value {
            None | Some("") => Ok(Self::Production),
            Some(name) => Self::from_name(name),
        }
    }

    /// The environment's name, as in `GLOBUS_SDK_ENVIRONMENT`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::Preview => "preview",
            Self::Sandbox => "sandbox",
            Self::Integration => "integration",
            Self::Test => "test",
            Self::Staging => "staging",
        }
    }

    fn domain(self) -> String {
        match self {
            Self::Production => "globus.org".into(),
            Self::Preview => "preview.globus.org".into(),
            other => format!("{}.globuscs.info", other.name()),
        }
    }

    /// The default base URL of `service` (`auth`, `transfer`, `flows`, ...)
    /// in this environment, with a trailing slash.
    ///
    /// ```
    /// use globus_app_proto::environment::Environment;
    /// assert_eq!(Environment::Production.default_service_url("auth"), "https://auth.globus.org/");
    /// assert_eq!(Environment::Sandbox.default_service_url("transfer"), "https://transfer.api.sandbox.globuscs.info/");
    /// assert_eq!(Environment::Preview.default_service_url("flows"), "https://preview.flows.automate.globus.org/");
    /// ```
    pub fn default_service_url(self, service: &str) -> String {
        if self == Self::Production {
            match service {
                "nexus" => return "https://nexus.api.globusonline.org/".into(),
                "timer" | "flows" | "actions" => {
                    return format!("https://{service}.automate.globus.org/");
                }
                _ => {}
            }
        }
        match service {
            "app" | "auth" => format!("https://{service}.{}/", self.domain()),
            "actions" | "flows" | "timer" => {
                format!("https://{}.{service}.automate.globus.org/", self.name())
            }
            _ => format!("https://{service}.api.{}/", self.domain()),
        }
    }

    /// The base URL of `service`: `override_url` (the value of
    /// `GLOBUS_SDK_SERVICE_URL_<SERVICE>`) when it is set and non-empty, in
    /// any environment, else the default. The result always ends with a
    /// slash, so relative paths join correctly whether or not the override
    /// had one.
    ///
    /// ```
    /// use globus_app_proto::environment::Environment;
    /// let url = Environment::Production.service_url("auth", Some("http://127.0.0.1:8080"))?;
    /// assert_eq!(url.as_str(), "http://127.0.0.1:8080/");
    /// assert_eq!(url.join("v2/oauth2/token").unwrap().as_str(), "http://127.0.0.1:8080/v2/oauth2/token");
    /// # Ok::<(), globus_app_proto::environment::EnvironmentError>(())
    /// ```
    pub fn service_url(
        self,
        service: &str,
        override_url: Option<&str>,
    ) -> Result<Url, EnvironmentError> {
        let raw = match override_url {
            Some(url) if !url.is_empty() => url.to_owned(),
            _ => self.default_service_url(service),
        };
        parse_base_url(&raw).ok_or_else(|| EnvironmentError::InvalidServiceUrl {
            service: service.to_owned(),
            url: raw,
        })
    }

    /// The token-file name prefix: empty for production, else `"<name>-"`.
    pub fn token_file_prefix(self) -> String {
        if self == Self::Production {
            String::new()
        } else {
            format!("{}-", self.name())
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An absolute http(s) URL, normalised to end with a slash.
fn parse_base_url(raw: &str) -> Option<Url> {
    let mut url = Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return None;
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_urls_match_the_reference_table() {
        let p = Environment::Production;
        assert_eq!(
            p.default_service_url("transfer"),
            "https://transfer.api.globus.org/"
        );
        assert_eq!(
            p.default_service_url("flows"),
            "https://flows.automate.globus.org/"
        );
        assert_eq!(
            p.default_service_url("timer"),
            "https://timer.automate.globus.org/"
        );
        assert_eq!(
            p.default_service_url("actions"),
            "https://actions.automate.globus.org/"
        );
        assert_eq!(
            p.default_service_url("nexus"),
            "https://nexus.api.globusonline.org/"
        );
        assert_eq!(p.default_service_url("app"), "https://app.globus.org/");
        assert_eq!(
            Environment::Preview.default_service_url("auth"),
            "https://auth.preview.globus.org/"
        );
        for env in ["sandbox", "integration", "test", "staging"] {
            let e = Environment::from_name(env).unwrap();
            assert_eq!(
                e.default_service_url("auth"),
                format!("https://auth.{env}.globuscs.info/")
            );
            assert_eq!(e.token_file_prefix(), format!("{env}-"));
        }
        assert_eq!(p.token_file_prefix(), "");
    }

    #[test]
    fn overrides_apply_in_any_environment_with_or_without_a_slash() {
        for env in Environment::ALL {
            for raw in ["https://auth.example.org", "https://auth.example.org/"] {
                let url = env.service_url("auth", Some(raw)).unwrap();
                assert_eq!(url.as_str(), "https://auth.example.org/");
            }
        }
        let nested = Environment::Sandbox
            .service_url("auth", Some("http://localhost:1/prefix"))
            .unwrap();
        assert_eq!(
            nested.join("v2/oauth2/token").unwrap().as_str(),
            "http://localhost:1/prefix/v2/oauth2/token"
        );
        assert_eq!(
            Environment::Sandbox
                .service_url("auth", Some(""))
                .unwrap()
                .as_str(),
            "https://auth.sandbox.globuscs.info/"
        );
        assert!(matches!(
            Environment::Production.service_url("auth", Some("not a url")),
            Err(EnvironmentError::InvalidServiceUrl { .. })
        ));
        assert!(
            Environment::Production
                .service_url("auth", Some("ftp://x/"))
                .is_err()
        );
    }

    #[test]
    fn unknown_environments_are_rejected_with_the_reference_message() {
        assert_eq!(
            Environment::from_name("moon").unwrap_err().to_string(),
            "unknown Globus environment \"moon\""
        );
    }
}
