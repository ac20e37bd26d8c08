//! [`AutoTerminal`]: a scripted user at a terminal, for the command-line
//! login flow.

use std::io::{BufRead, Read, Write};
use std::sync::{Arc, Mutex};

/// A terminal whose user reads the printed URL, approves in a browser,
/// reads the code off the Globus auth-code page and types it in.
#[derive(Clone, Default)]
pub struct AutoTerminal {
    printed: Arc<Mutex<String>>,
    typed: Arc<Mutex<Vec<u8>>>,
}

impl AutoTerminal {
    /// Approves `url` and reads the code off the auth-code page.
    ///
    /// # Panics
    /// If the server does not redirect to its auth-code page.
    pub fn read_code_for(url: &str) -> String {
        let agent = crate::auth_server::browser_agent();
        let redirect = agent.get(url).call().unwrap();
        let page_url = redirect.headers()["location"].to_str().unwrap().to_owned();
        assert!(page_url.contains("/v2/web/auth-code?"), "{page_url}");
        let page = agent
            .get(&page_url)
            .call()
            .unwrap()
            .into_body()
            .read_to_string()
            .unwrap();
        let start = page.find("<code id=\"code\">").unwrap() + "<code id=\"code\">".len();
        page[start..start + page[start..].find("</code>").unwrap()].to_owned()
    }
}

impl Write for AutoTerminal {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut printed = self.printed.lock().unwrap();
        printed.push_str(&String::from_utf8_lossy(buf));
        while let Some(end) = printed.find('\n') {
            let line: String = printed.drain(..=end).collect();
            if line.starts_with("http") {
                let code = Self::read_code_for(line.trim());
                self.typed
                    .lock()
                    .unwrap()
                    .extend_from_slice(format!("{code}\n").as_bytes());
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Read for AutoTerminal {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut typed = self.typed.lock().unwrap();
        let n = typed.len().min(buf.len());
        buf[..n].copy_from_slice(&typed[..n]);
        typed.drain(..n);
        Ok(n)
    }
}

impl BufRead for AutoTerminal {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        // Only whole lines are typed; read_line is served by read below.
        Err(std::io::Error::other("use read_line"))
    }

    fn consume(&mut self, _amount: usize) {}

    fn read_line(&mut self, line: &mut String) -> std::io::Result<usize> {
        let mut typed = self.typed.lock().unwrap();
        let Some(end) = typed.iter().position(|b| *b == b'\n') else {
            return Ok(0);
        };
        let text: Vec<u8> = typed.drain(..=end).collect();
        line.push_str(&String::from_utf8_lossy(&text));
        Ok(text.len())
    }
}
