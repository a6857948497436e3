import ArgumentParser
import SwitchboardGateway

// Parsed and run by hand: from top-level code `GatewayCommand.main()`, and `run()` on a `var`, resolve to
// ParsableCommand's synchronous defaults, which only print the help.
do {
    let command = try GatewayCommand.parse()
    try await command.run()
} catch {
    GatewayCommand.exit(withError: error)
}
