// protoc-gen-switchboard: a protoc plugin emitting Switchboard's Swift types, service protocols and clients.
// protoc writes a CodeGeneratorRequest to stdin and reads a CodeGeneratorResponse from stdout.
import Foundation

let input = FileHandle.standardInput.readDataToEndOfFile()
var output: [UInt8]
do {
    let request = try CodeGeneratorIO.decodeRequest([UInt8](input))
    let generator = SwiftGenerator(files: request.files)
    var generated: [GeneratedFile] = []
    for name in request.filesToGenerate { generated.append(try generator.generate(fileNamed: name)) }
    generated.append(generator.generateRegistry(fileNames: request.filesToGenerate))
    // `http_rules=<file>` (protoc's --switchboard_opt): the gateway's HTTP rules, a google.api.Service in JSON form.
    for option in request.parameter.split(separator: ",") where option.hasPrefix("http_rules=") {
        let schema = HTTPSchemaGenerator(files: request.files, filesToGenerate: request.filesToGenerate)
        generated.append(try schema.generate(rulesPath: String(option.dropFirst("http_rules=".count))))
    }
    output = CodeGeneratorIO.encodeResponse(files: generated, error: nil)
} catch {
    output = CodeGeneratorIO.encodeResponse(files: [], error: "\(error)")
}
FileHandle.standardOutput.write(Data(output))
