//! `.netrc` (`netaccess-cli/src/get/netrc.rs`): any text parses; hosts are lowercase; a
//! lookup finds the first entry of a host in any case; the entries written back (every value
//! quoted) parse to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netaccess_cli::__fuzz::Netrc;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let netrc = Netrc::parse(text);
    let machines = netrc.machines();
    assert!(machines.len() <= text.len() / 2 + 1);
    let mut written = String::new();
    for (host, login, password) in machines {
        assert_eq!(host, &host.to_ascii_lowercase());
        assert!(host.len() + login.len() + password.len() <= text.len());
        let first = machines.iter().find(|(h, _, _)| h == host).expect("itself");
        let want = Some((first.1.as_str(), first.2.as_str()));
        assert_eq!(netrc.lookup(host), want);
        assert_eq!(netrc.lookup(&host.to_ascii_uppercase()), want);
        written.push_str(&format!(
            "machine {} login {} password {}\n",
            netaccess_fuzz::quoted_string(host),
            netaccess_fuzz::quoted_string(login),
            netaccess_fuzz::quoted_string(password)
        ));
    }
    if let Some((login, password)) = netrc.default_entry() {
        written.push_str(&format!(
            "default login {} password {}\n",
            netaccess_fuzz::quoted_string(login),
            netaccess_fuzz::quoted_string(password)
        ));
    }
    let again = Netrc::parse(&written);
    assert_eq!(
        again.machines(),
        machines,
        "{text:?} written back as {written:?}"
    );
    assert_eq!(again.default_entry(), netrc.default_entry());
});
