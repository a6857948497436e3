/// Runs around every server call: authentication, logging, metrics and tracing live here, not in handlers.
///
/// An interceptor sees the call's context before the handler runs and the outcome after (the handler's result
/// or the error it threw); it may reject a call by throwing an ``RPCError`` without calling `next`.
public protocol ServerInterceptor: Sendable {
    /// Intercepts one call.
    /// - Parameters:
    ///   - context: the call's context; interceptors may attach values to it.
    ///   - next: runs the rest of the chain and the handler.
    /// - Returns: what `next` returned.
    /// - Throws: to end the call with an error status.
    func intercept<Result: Sendable>(
        context: ServerContext,
        next: @Sendable (ServerContext) async throws -> Result
    ) async throws -> Result
}

/// Runs around every client call: adds credentials, tracing headers, logs, metrics.
public protocol ClientInterceptor: Sendable {
    /// Intercepts one call.
    /// - Parameters:
    ///   - method: the method being called.
    ///   - options: the call's options (metadata, timeout); pass changed options to `next`.
    ///   - next: runs the rest of the chain and the call.
    /// - Returns: what `next` returned.
    /// - Throws: to fail the call.
    func intercept<Result: Sendable>(
        method: MethodDescriptor,
        options: CallOptions,
        next: @Sendable (CallOptions) async throws -> Result
    ) async throws -> Result
}

extension Array where Element == any ServerInterceptor {
    /// Runs the chain, outermost first, around a body.
    /// - Parameters:
    ///   - context: the call context.
    ///   - body: the handler.
    /// - Returns: the body's result.
    public func run<Result: Sendable>(
        context: ServerContext,
        body: @escaping @Sendable (ServerContext) async throws -> Result
    ) async throws -> Result {
        try await runServerChain(self[...], context: context, body: body)
    }
}

private func runServerChain<Result: Sendable>(
    _ chain: ArraySlice<any ServerInterceptor>,
    context: ServerContext,
    body: @escaping @Sendable (ServerContext) async throws -> Result
) async throws -> Result {
    guard let first = chain.first else { return try await body(context) }
    let rest = chain.dropFirst()
    return try await first.intercept(context: context) { context in
        try await runServerChain(rest, context: context, body: body)
    }
}

extension Array where Element == any ClientInterceptor {
    /// Runs the chain, outermost first, around a call.
    /// - Parameters:
    ///   - method: the method called.
    ///   - options: the initial options.
    ///   - body: the call.
    /// - Returns: the call's result.
    public func run<Result: Sendable>(
        method: MethodDescriptor,
        options: CallOptions,
        body: @escaping @Sendable (CallOptions) async throws -> Result
    ) async throws -> Result {
        try await runClientChain(self[...], method: method, options: options, body: body)
    }
}

private func runClientChain<Result: Sendable>(
    _ chain: ArraySlice<any ClientInterceptor>,
    method: MethodDescriptor,
    options: CallOptions,
    body: @escaping @Sendable (CallOptions) async throws -> Result
) async throws -> Result {
    guard let first = chain.first else { return try await body(options) }
    let rest = chain.dropFirst()
    return try await first.intercept(method: method, options: options) { options in
        try await runClientChain(rest, method: method, options: options, body: body)
    }
}
