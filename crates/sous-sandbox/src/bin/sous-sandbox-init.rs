//! The sandbox init as a program of its own: `sous-sandbox-init __sandbox-init <plan-fd>`.
//! The real `sous` binary does the same from its hidden `__sandbox-init` subcommand.

fn main() {
    sous_sandbox::init_main()
}
