import SwitchboardGateway

await GatewayCommand.main()
