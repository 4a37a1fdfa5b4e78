using System.CommandLine;
using System.Text.Json;
using Mirroring.Agent.Configuration;
using Spectre.Console;

namespace Mirroring.Cli.Commands;

/// <summary><c>vrmirror md status</c>: the state of each Kubernetes MirrorDestination and the annotation of each mirrored interface.</summary>
internal static class MdCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "Base configuration (YAML) with the pods' interfaces", Required = true };
        var manifests = new Option<FileInfo[]>("--manifest", "-m") { Description = "Kubernetes manifests: MirrorDestination resources and Pods (repeatable)", AllowMultipleArgumentsPerToken = true };
        var json = new Option<bool>("--json") { Description = "Machine-readable output" };
        var status = new Command("status", "Show each MirrorDestination's state (Pending / Success / Failure) with its observation, and the mirroring-configuration annotation of mirrored interfaces.")
        {
            config, manifests, json,
        };
        status.SetAction(parse =>
        {
            var files = new List<string> { parse.GetValue(config)!.FullName };
            files.AddRange((parse.GetValue(manifests) ?? []).Select(f => f.FullName));
            var result = ConfigLoader.LoadFiles(files.ToArray());
            var annotations = result.Config?.Interfaces
                .Where(i => i.MirroringConfigurationAnnotation is not null)
                .Select(i => new { Interface = i.Name, i.Pod, Annotation = i.MirroringConfigurationAnnotation! })
                .ToList() ?? [];

            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    mirror_destinations = result.MirrorDestinations.Select(s => new { name = s.Name, @namespace = s.Namespace, state = s.State.ToString(), observation = s.Observation }),
                    interfaces = annotations.Select(a => new { name = a.Interface, pod = a.Pod, mirroring_configuration = a.Annotation }),
                    errors = result.Errors.Select(e => e.ToString()),
                }, new JsonSerializerOptions { WriteIndented = true }));
            }
            else
            {
                var table = new Table().AddColumns("namespace", "name", "state", "observation");
                foreach (var s in result.MirrorDestinations)
                {
                    string color = s.State switch
                    {
                        Agent.Configuration.Kubernetes.MirrorDestinationState.Success => "green",
                        Agent.Configuration.Kubernetes.MirrorDestinationState.Pending => "yellow",
                        _ => "red",
                    };
                    table.AddRow(Markup.Escape(s.Namespace), Markup.Escape(s.Name), $"[{color}]{s.State}[/]", Markup.Escape(s.Observation));
                }
                AnsiConsole.Write(table);
                foreach (var a in annotations)
                    Console.WriteLine($"{a.Interface} ({a.Pod}): core.juniper.net/mirroring-configuration: {a.Annotation}");
                if (!result.Succeeded) Console.Error.WriteLine(result.ErrorReport);
            }
            return result.Succeeded ? 0 : 2;
        });

        return new Command("md", "Kubernetes MirrorDestination resources (Cloud-Native Contrail port mirroring).") { status };
    }
}
